"""Workers die and stop: nothing is lost, nothing is sent twice, unknown outcomes are marked."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.db import Notifier, create_engine, create_sessionmaker
from sms_sender.dispatch.engine import DeliveryEngine
from sms_sender.dispatch.runtime import WORKER_DATABASE_OPTIONS
from sms_sender.providers.fake import FakeProvider, accept, hang
from sms_sender.reports.models import Report, ReportStatus
from tests.arrange import Arrange
from tests.conftest import FakeClock
from tests.dispatch.conftest import FAST, EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")


async def left_by_a_dead_worker(
    arrange: Arrange, report_id: int, status: ReportStatus, *, lease_left: timedelta
) -> None:
    """The report as a worker that was killed left it: leased, in ``status``."""
    async with arrange.sessionmaker() as session, session.begin():
        await session.execute(
            update(Report)
            .where(Report.id == report_id)
            .values(
                status=status,
                attempts=1 if status == ReportStatus.SENDING else 0,
                provider="fake",
                lease_owner="dead-host:4242:0badc0de",
                lease_expires_at=arrange.clock.now() + lease_left,
            )
        )


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
async def test_after_a_crash_unsent_work_is_sent_and_unknown_outcomes_are_not_repeated(
    arrange: Arrange, make_engine: EngineFactory, idempotent: bool
) -> None:
    await arrange.many_clients(4)
    mailing_id = await arrange.mailing()
    in_flight, claimed, alive, untouched = [r.id for r in await arrange.reports(mailing_id)]
    expired = timedelta(seconds=-1)
    await left_by_a_dead_worker(arrange, in_flight, ReportStatus.SENDING, lease_left=expired)
    await left_by_a_dead_worker(arrange, claimed, ReportStatus.PENDING, lease_left=expired)
    # Another worker, still alive, is sending this one right now: hands off.
    await left_by_a_dead_worker(arrange, alive, ReportStatus.SENDING, lease_left=timedelta(1))
    provider = FakeProvider(idempotent=idempotent)

    worker = make_engine(provider).worker
    await worker.reclaim()
    await worker.drain()

    reports = {report.id: report for report in await arrange.reports(mailing_id)}
    expected_sent = {claimed, untouched} | ({in_flight} if idempotent else set())
    assert set(provider.report_ids()) == expected_sent
    assert reports[claimed].status == ReportStatus.SENT
    assert reports[untouched].status == ReportStatus.SENT
    assert reports[alive].status == ReportStatus.SENDING
    if idempotent:  # the gateway drops a repeat, so asking again is safe
        assert reports[in_flight].status == ReportStatus.SENT
    else:
        assert reports[in_flight].status == ReportStatus.UNKNOWN
        assert "not sent again" in (reports[in_flight].error or "")
        assert reports[in_flight].lease_owner is None


async def test_a_graceful_stop_records_answers_and_releases_what_it_held(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.many_clients(10)
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=hang())
    engine = make_engine(provider, concurrency=2)
    async with engine.running():
        await provider.wait_for_calls(2)
        provider.default = accept()
        provider.release()  # the two in flight answer during the shutdown's grace period

    statuses = await arrange.statuses(mailing_id)
    assert statuses == {"sent": 2, "pending": 8}
    assert all(r.lease_owner is None for r in await arrange.reports(mailing_id))

    # Released, not merely left to expire: the next worker takes them at once.
    successor = FakeProvider()
    await make_engine(successor).worker.drain()
    assert await arrange.statuses(mailing_id) == {"sent": 10}
    assert set(successor.report_ids()).isdisjoint(provider.report_ids())


async def test_a_send_still_unanswered_when_the_grace_period_ends_is_unknown(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.many_clients(3)
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=hang())
    tuning = replace(FAST, worker=replace(FAST.worker, shutdown_grace=0.05))
    async with make_engine(provider, concurrency=1, tuning=tuning).running():
        await provider.wait_for_calls(1)

    reports = {r.status: r for r in await arrange.reports(mailing_id)}
    assert set(await arrange.statuses(mailing_id)) == {"unknown", "pending"}
    assert "cancelled at shutdown" in (reports[ReportStatus.UNKNOWN].error or "")
    provider.release()


async def test_leases_of_a_live_worker_are_renewed_while_it_works(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.many_clients(1)
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=hang())
    engine = make_engine(provider, lease_seconds=60)
    async with engine.running():
        await provider.wait_for_calls(1)
        clock.advance(seconds=45)  # past a third of the lease: the next turn renews it
        engine.worker.wake()

        async def renewed() -> bool:
            [report] = await arrange.reports(mailing_id)
            return report.lease_expires_at == clock.now() + timedelta(seconds=60)

        await eventually(renewed, what="the lease renewed")
        provider.release()
    assert await arrange.statuses(mailing_id) == {"sent": 1}


async def test_two_workers_share_ten_thousand_reports_without_a_duplicate(
    arrange: Arrange,
    make_engine: EngineFactory,
    database_url: str,
    notifier: Notifier,
) -> None:
    await arrange.many_clients(10_000)
    mailing_id = await arrange.mailing()
    # Each worker on its own connection pool, as two processes would be.
    pools = [create_engine(database_url) for _ in range(2)]
    providers = [FakeProvider(), FakeProvider()]
    try:
        workers = [
            make_engine(
                provider,
                sessionmaker_=create_sessionmaker(pool, Notifier()),
                batch_size=500,
                concurrency=50,
            ).worker
            for pool, provider in zip(pools, providers, strict=True)
        ]
        await asyncio.gather(*(worker.drain() for worker in workers))
    finally:
        for pool in pools:
            await pool.dispose()

    first, second = (set(provider.report_ids()) for provider in providers)
    assert len(first) + len(second) == sum(len(p.calls) for p in providers)  # none twice
    assert first.isdisjoint(second)
    assert len(first | second) == 10_000
    # Both did real work: at least one full batch each. (How the rest is shared depends on the
    # machine's load: one worker sent exactly two batches on a busy CI machine.)
    assert min(len(first), len(second)) >= 500
    assert await arrange.statuses(mailing_id) == {"sent": 10_000}
    assert await arrange.mailing_status(mailing_id) == "finished"


async def test_the_engine_rides_out_lost_database_connections(
    arrange: Arrange,
    make_engine: EngineFactory,
    clean_db: AsyncEngine,
    notifier: Notifier,
    dialect: str,
) -> None:
    if dialect != "postgresql":
        pytest.skip("needs a database server whose connections can be cut")
    await arrange.many_clients(200)
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=accept(delay=0.002))
    # As `sms-sender worker` builds it: no ping before each transaction.
    url = clean_db.url.render_as_string(hide_password=False)
    database = create_engine(url, **WORKER_DATABASE_OPTIONS)
    worker = make_engine(
        provider,
        concurrency=5,
        batch_size=20,
        sessionmaker_=create_sessionmaker(database, notifier),
        notifier_=notifier,
    )
    try:
        await _cut_connections_mid_mailing(worker, provider, clean_db, arrange, mailing_id)
    finally:
        await database.dispose()

    assert provider.duplicates() == []
    statuses = await arrange.statuses(mailing_id)
    # A result whose write was cut off leaves its report to the reclaim rules; none is lost.
    assert set(statuses) <= {"sent", "unknown"}
    assert sum(statuses.values()) == 200


async def _cut_connections_mid_mailing(
    worker: DeliveryEngine,
    provider: FakeProvider,
    clean_db: AsyncEngine,
    arrange: Arrange,
    mailing_id: int,
) -> None:
    async with worker.running():
        await provider.wait_for_results(50)
        async with clean_db.connect() as connection:  # every other connection, mid-mailing
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        await eventually(
            lambda: _none_left(arrange, mailing_id), within=20, what="the mailing finished"
        )


async def _none_left(arrange: Arrange, mailing_id: int) -> bool:
    statuses = await arrange.statuses(mailing_id)
    return statuses["pending"] + statuses["sending"] == 0
