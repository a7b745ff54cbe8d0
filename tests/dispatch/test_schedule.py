"""Mailings start at start_at and stop at end_at by themselves, with time moved by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.clock import SystemClock
from sms_sender.config import Settings
from sms_sender.db import Notifier, create_sessionmaker
from sms_sender.dispatch import DeliveryEngine
from sms_sender.mailings.models import Mailing
from sms_sender.providers.base import OutgoingMessage, SendResult
from sms_sender.providers.fake import FakeProvider
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange
from tests.conftest import FakeClock
from tests.dispatch.conftest import FAST, EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_a_mailing_whose_window_contains_now_is_sent_at_once(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.many_clients(30)
    provider = FakeProvider()
    async with make_engine(provider).running():
        mailing_id = await arrange.mailing()
        await provider.wait_for_results(30)
        await eventually(
            lambda: _status_is(arrange, mailing_id, "finished"), what="mailing finished"
        )
    assert await arrange.statuses(mailing_id) == {"sent": 30}


async def test_a_future_mailing_starts_by_itself_at_start_at(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.many_clients(5)
    provider = FakeProvider(clock=clock)
    async with make_engine(provider).running():
        mailing_id = await arrange.mailing(start_in=timedelta(hours=2))
        clock.advance(hours=1, minutes=59, seconds=59)
        assert await arrange.mailing_status(mailing_id) == "scheduled"
        assert await arrange.statuses(mailing_id) == {}
        clock.advance(seconds=1)
        await provider.wait_for_results(5)

    async with arrange.sessionmaker() as session:
        mailing = await session.get(Mailing, mailing_id)
    assert mailing is not None
    assert mailing.started_at == mailing.start_at  # started the moment it was due
    assert all(call.started_at >= mailing.start_at for call in provider.calls)


async def test_the_schedule_survives_a_restart(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.many_clients(3)
    mailing_id = await arrange.mailing(start_in=timedelta(minutes=10))
    async with make_engine(FakeProvider()).running():
        pass  # a process that stops before start_at

    clock.advance(minutes=15)  # nothing ran at start_at
    provider = FakeProvider()
    async with make_engine(provider).running():
        await provider.wait_for_results(3)
    assert await arrange.statuses(mailing_id) == {"sent": 3}


async def test_a_mailing_missed_entirely_while_down_ends_with_every_report_expired(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.many_clients(3)
    mailing_id = await arrange.mailing(start_in=timedelta(minutes=10), lasts=timedelta(hours=1))
    clock.advance(hours=2)
    provider = FakeProvider()

    await make_engine(provider).scheduler.tick()

    assert provider.calls == []
    assert await arrange.statuses(mailing_id) == {"expired": 3}
    assert await arrange.mailing_status(mailing_id) == "finished"


class TenMinuteCalls:
    """A gateway whose every call takes ten minutes of the fake clock, from the moment it starts."""

    name = "slow"
    idempotent = False

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.started_at: list[datetime] = []

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        self.started_at.append(self.clock.now())
        self.clock.advance(minutes=10)
        await asyncio.sleep(0.01)
        return [SendResult.accepted() for _ in batch]


async def test_no_call_starts_at_or_after_end_at_even_with_a_slow_provider(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.many_clients(10)
    mailing_id = await arrange.mailing(lasts=timedelta(minutes=35))
    end_at = clock.now() + timedelta(minutes=35)
    provider = TenMinuteCalls(clock)

    # Five are handed over together at T; their calls begin at T, T+10, T+20, T+30 and T+40.
    async with make_engine(provider, concurrency=5).running():
        await eventually(
            lambda: _status_is(arrange, mailing_id, "finished"), what="mailing finished"
        )
        await eventually(
            lambda: _no_report_in(arrange, mailing_id, "pending", "sending"),
            what="every report settled",
        )

    assert len(provider.started_at) == 4
    assert all(started_at < end_at for started_at in provider.started_at)
    assert await arrange.statuses(mailing_id) == {"sent": 4, "expired": 6}
    expired = [r for r in await arrange.reports(mailing_id) if r.status == ReportStatus.EXPIRED]
    assert {r.error for r in expired} == {"end_at reached before it could be sent"}


async def test_at_end_at_unsent_reports_expire_and_the_mailing_finishes(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.many_clients(4)
    mailing_id = await arrange.mailing(lasts=timedelta(minutes=5), send_window=("03:00", "04:00"))
    async with make_engine(FakeProvider()).running():
        # Outside the window (12:00 UTC): nothing is sent; the reports wait.
        await eventually(lambda: _all_put_off(arrange, mailing_id), what="reports put off")
        assert await arrange.statuses(mailing_id) == {"pending": 4}
        clock.advance(minutes=5)
        await eventually(
            lambda: _status_is(arrange, mailing_id, "finished"), what="mailing finished"
        )
    assert await arrange.statuses(mailing_id) == {"expired": 4}


async def test_an_edited_schedule_wakes_the_scheduler(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.many_clients(2)
    provider = FakeProvider()
    async with make_engine(provider).running():
        far = await arrange.mailing(start_in=timedelta(days=7))
        soon = await arrange.mailing(start_in=timedelta(minutes=1))
        clock.advance(minutes=1)
        await provider.wait_for_results(2)
        assert {call.message.mailing_id for call in provider.calls} == {soon}
        assert await arrange.mailing_status(far) == "scheduled"


async def test_with_the_system_clock_a_mailing_starts_within_a_second_of_start_at(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
) -> None:
    clock = SystemClock()
    arrange = Arrange(sessionmaker, clock)  # type: ignore[arg-type]
    await arrange.many_clients(1)
    provider = FakeProvider()
    engine = DeliveryEngine(
        settings=settings.model_copy(update={"rate_limit": 1e6}),
        sessionmaker=sessionmaker,
        notifier=notifier,
        clock=clock,
        provider=provider,
        tuning=FAST,
    )
    async with engine.running():
        mailing_id = await arrange.mailing(start_in=timedelta(seconds=0.3))
        # The wait only has to outlast a loaded machine (3 s did not, at load 12); the
        # promise checked is the start time the engine recorded.
        await provider.wait_for_results(1, within=15)
    async with sessionmaker() as session:
        mailing = await session.get(Mailing, mailing_id)
    assert mailing is not None
    assert mailing.started_at is not None
    assert timedelta(0) <= mailing.started_at - mailing.start_at < timedelta(seconds=1)


async def _status_is(arrange: Arrange, mailing_id: int, status: str) -> bool:
    return await arrange.mailing_status(mailing_id) == status


async def _no_report_in(arrange: Arrange, mailing_id: int, *statuses: str) -> bool:
    counts = await arrange.statuses(mailing_id)
    return not any(counts[status] for status in statuses)


async def _all_put_off(arrange: Arrange, mailing_id: int) -> bool:
    reports = await arrange.reports(mailing_id)
    now = arrange.clock.now()
    return bool(reports) and all(
        report.next_attempt_at > now and report.lease_owner is None for report in reports
    )


async def test_a_change_made_by_another_process_wakes_the_engine_through_listen(
    arrange: Arrange,
    make_engine: EngineFactory,
    clean_db: AsyncEngine,
    dialect: str,
) -> None:
    if dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is how PostgreSQL processes wake each other")
    await arrange.many_clients(3)
    provider = FakeProvider()
    # The engine's process has its own notifier; the API "process" below fires another one.
    engine = make_engine(provider, notifier_=Notifier())
    async with engine.running():
        assert engine.listener is not None
        await asyncio.wait_for(engine.listener.connected.wait(), 5)
        # The fake clock never moves: only a notification can wake the idle engine.
        elsewhere = Arrange(create_sessionmaker(clean_db, Notifier()), arrange.clock)
        mailing_id = await elsewhere.mailing()
        await provider.wait_for_results(3)
    assert await arrange.statuses(mailing_id) == {"sent": 3}
