"""A report whose mailing or client goes away while it is being sent is closed, never stranded.

Cancel, end_at and client deletion close only reports not yet handed over; one in ``sending``
is left to its worker. When that send then fails transiently, or is abandoned, the report
would go back to ``pending``, where nothing would ever send or close it (or worse, where it
would be sent to a deleted client). These tests check that it closes instead.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.clients import service as clients_service
from sms_sender.consent.rules import PhoneHasher
from sms_sender.dispatch import RetryPolicy
from sms_sender.mailings import service as mailings_service
from sms_sender.mailings.schemas import MailingUpdate, SendWindow
from sms_sender.providers.base import Outcome
from sms_sender.providers.fake import FakeProvider, Step, hang
from sms_sender.reports.models import Report, ReportStatus
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")

PREDICTABLE = RetryPolicy(max_attempts=3, base=10.0, uniform=lambda low, high: high)
# Waits for FakeProvider.release(), then answers "try again later".
FAILS_WHEN_RELEASED = Step(Outcome.TRANSIENT, error="gateway unavailable", hang=True)


async def only_report(arrange: Arrange, mailing_id: int) -> Report:
    [report] = await arrange.reports(mailing_id)
    return report


async def has_statuses(arrange: Arrange, mailing_id: int, expected: dict[str, int]) -> bool:
    return await arrange.statuses(mailing_id) == expected


async def set_report(arrange: Arrange, report_id: int, **values: object) -> None:
    async with arrange.sessionmaker() as session, session.begin():
        await session.execute(update(Report).where(Report.id == report_id).values(**values))


async def test_a_send_failing_after_its_mailing_was_cancelled_is_cancelled_not_retried(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing(lasts=timedelta(minutes=30))
    provider = FakeProvider(clock=clock, default=FAILS_WHEN_RELEASED)
    async with make_engine(provider, retry=PREDICTABLE).running():
        await provider.wait_for_calls(1)
        await arrange.control("cancel", mailing_id)
        provider.release()
        await eventually(
            lambda: has_statuses(arrange, mailing_id, {"cancelled": 1}), what="report cancelled"
        )
    report = await only_report(arrange, mailing_id)
    assert report.error == "mailing cancelled"
    assert len(provider.calls) == 1


async def test_a_send_failing_after_end_at_expires(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing(lasts=timedelta(minutes=30))
    provider = FakeProvider(clock=clock, default=FAILS_WHEN_RELEASED)
    async with make_engine(provider, retry=PREDICTABLE).running():
        await provider.wait_for_calls(1)
        clock.advance(minutes=31)

        async def finished() -> bool:
            return await arrange.mailing_status(mailing_id) == "finished"

        await eventually(finished, what="the mailing ending at end_at")
        provider.release()
        await eventually(
            lambda: has_statuses(arrange, mailing_id, {"expired": 1}), what="report expired"
        )
    report = await only_report(arrange, mailing_id)
    assert report.error == "end_at reached before it could be sent"
    assert len(provider.calls) == 1


async def test_a_retry_that_would_come_at_or_after_end_at_expires_at_once(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    # The first retry would be 10 s later, after the mailing's end.
    mailing_id = await arrange.mailing(lasts=timedelta(seconds=5))
    provider = FakeProvider(clock=clock, default=Step(Outcome.TRANSIENT, error="busy"))

    await make_engine(provider, retry=PREDICTABLE).worker.drain()

    report = await only_report(arrange, mailing_id)
    assert (report.status, report.error) == (
        ReportStatus.EXPIRED,
        "end_at reached before it could be sent",
    )
    assert await arrange.mailing_status(mailing_id) == "finished"


async def test_an_abandoned_idempotent_send_of_a_cancelled_mailing_is_cancelled_not_resent(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing()
    report = await only_report(arrange, mailing_id)
    await set_report(  # as a worker that died mid-send left it
        arrange,
        report.id,
        status=ReportStatus.SENDING,
        attempts=1,
        provider="fake",
        lease_owner="dead-host:4242:0badc0de",
        lease_expires_at=clock.now() - timedelta(seconds=1),
    )
    await arrange.control("cancel", mailing_id)
    provider = FakeProvider(clock=clock, idempotent=True)
    worker = make_engine(provider).worker

    await worker.reclaim()
    await worker.drain()

    report = await only_report(arrange, mailing_id)
    assert (report.status, report.error) == (ReportStatus.CANCELLED, "mailing cancelled")
    assert provider.calls == []


async def test_a_client_deleted_while_being_sent_to_is_not_sent_again(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    [client_id] = await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing(lasts=timedelta(minutes=30))
    provider = FakeProvider(clock=clock, default=FAILS_WHEN_RELEASED)
    async with make_engine(provider, retry=PREDICTABLE).running():
        await provider.wait_for_calls(1)
        async with sessionmaker() as session, session.begin():
            await clients_service.delete(
                session, client_id, hasher=PhoneHasher(b"test"), now=clock.now()
            )
        provider.release()
        await eventually(
            lambda: has_statuses(arrange, mailing_id, {"cancelled": 1}), what="report cancelled"
        )
    clock.advance(seconds=11)  # when the retry would have been due
    await make_engine(provider, retry=PREDICTABLE).worker.drain()

    report = await only_report(arrange, mailing_id)
    assert (report.client_id, report.error) == (None, "client deleted")
    assert len(provider.calls) == 1


async def test_a_pending_report_of_a_deleted_client_is_never_claimed(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    orphan, kept = await arrange.reports(mailing_id)
    await set_report(arrange, orphan.id, client_id=None)  # its client deleted meanwhile
    provider = FakeProvider(clock=clock)

    await make_engine(provider).worker.drain()

    assert provider.report_ids() == [kept.id]


async def test_the_scheduler_closes_pending_reports_left_in_ended_mailings(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    cancelled_id = await arrange.mailing()
    finished_id = await arrange.mailing()
    await arrange.control("cancel", cancelled_id)
    engine = make_engine(FakeProvider(clock=clock))
    await engine.worker.drain()  # finished_id: sent, so finished
    # A settlement that raced the cancel or the end in another transaction left them pending.
    for mailing_id in (cancelled_id, finished_id):
        report = await only_report(arrange, mailing_id)
        await set_report(arrange, report.id, status=ReportStatus.PENDING, error=None)

    await engine.scheduler.tick()

    assert await arrange.statuses(cancelled_id) == {"cancelled": 1}
    assert await arrange.statuses(finished_id) == {"expired": 1}
    assert await arrange.mailing_status(finished_id) == "finished"


async def test_an_end_moved_earlier_after_the_claim_bounds_the_next_send(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing(lasts=timedelta(hours=1))
    provider = FakeProvider(clock=clock)
    provider.script(hang())  # the first send holds the only slot; the second waits, claimed
    async with make_engine(provider, concurrency=1).running():
        await provider.wait_for_calls(1)
        async with sessionmaker() as session, session.begin():
            new_end = clock.now() + timedelta(minutes=10)
            await mailings_service.update(
                session, mailing_id, MailingUpdate(end_at=new_end), clock.now()
            )
        provider.release()
        await provider.wait_for_results(2)

    assert provider.calls[1].message.valid_for == timedelta(minutes=10)


async def test_a_window_narrowed_after_the_claim_holds_the_next_send_until_it_opens(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing(lasts=timedelta(hours=10))
    provider = FakeProvider(clock=clock)
    provider.script(hang())
    async with make_engine(provider, concurrency=1).running():
        await provider.wait_for_calls(1)
        async with sessionmaker() as session, session.begin():
            evening = MailingUpdate(send_window=SendWindow(start="20:00", end="21:00"))
            await mailings_service.update(session, mailing_id, evening, clock.now())
        provider.release()

        async def put_off() -> bool:
            return [
                (r.status, r.attempts, r.next_attempt_at.hour, r.lease_owner)
                for r in await arrange.reports(mailing_id)
            ] == [(ReportStatus.SENT, 1, 12, None), (ReportStatus.PENDING, 0, 20, None)]

        await eventually(put_off, what="the second report put off until 20:00, not attempted")

    assert len(provider.calls) == 1
