"""What the engine's scheduler does to mailings: start_mailing, and finish_mailings at the end."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.db import CHANNEL_REPORTS, Notifier
from sms_sender.dispatch import repository
from sms_sender.mailings import service
from sms_sender.mailings.models import Mailing, MailingStatus
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

MOSCOW = "Europe/Moscow"  # 15:00 at the test clock's noon UTC: outside a 20:00-21:00 window
CLIENTS = [
    ClientSpec("79160000001", tag="vip", timezone=MOSCOW),
    ClientSpec("79160000002", timezone=MOSCOW),
]


@pytest.fixture
async def scheduled(arrange: Arrange) -> int:
    """A mailing to CLIENTS that starts in ten minutes and lasts two hours."""
    await arrange.clients(CLIENTS)
    return await arrange.mailing(start_in=timedelta(minutes=10), lasts=timedelta(hours=2))


async def _load(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int) -> Mailing:
    async with sessionmaker() as session:
        return await service.get(session, mailing_id)


async def test_start_mailing_starts_once_even_when_called_twice(
    sessionmaker: async_sessionmaker[AsyncSession],
    arrange: Arrange,
    clock: FakeClock,
    notifier: Notifier,
    scheduled: int,
) -> None:
    # Two schedulers that both saw the mailing as scheduled, each in its own transaction.
    seen_by_first = await _load(sessionmaker, scheduled)
    seen_by_second = await _load(sessionmaker, scheduled)
    reports_due = notifier.subscribe(CHANNEL_REPORTS)
    clock.advance(minutes=10)

    async with sessionmaker() as first:
        assert await service.start_mailing(first, seen_by_first, clock.now()) == len(CLIENTS)
        await first.commit()
    assert reports_due.is_set()
    async with sessionmaker() as second:
        assert await service.start_mailing(second, seen_by_second, clock.now()) is None
        await second.commit()

    assert len(await arrange.reports(scheduled)) == len(CLIENTS)
    started = await _load(sessionmaker, scheduled)
    assert (started.status, started.started_at) == (MailingStatus.RUNNING, clock.now())


async def test_start_mailing_leaves_a_paused_mailing_alone(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    arrange: Arrange,
    clock: FakeClock,
    scheduled: int,
) -> None:
    mailing = await _load(sessionmaker, scheduled)
    await client.post(f"/api/v1/mailings/{scheduled}/pause")
    clock.advance(minutes=10)

    async with sessionmaker() as scheduler_session:
        assert await service.start_mailing(scheduler_session, mailing, clock.now()) is None
        await scheduler_session.commit()

    assert await arrange.reports(scheduled) == []
    assert (await _load(sessionmaker, scheduled)).status == MailingStatus.PAUSED


async def test_finishing_at_the_end_expires_what_was_not_sent(
    sessionmaker: async_sessionmaker[AsyncSession],
    arrange: Arrange,
    clean_db: AsyncEngine,
    clock: FakeClock,
    scheduled: int,
) -> None:
    clock.advance(minutes=10)
    async with sessionmaker() as scheduler_session:
        mailing = await service.get(scheduler_session, scheduled)
        await service.start_mailing(scheduler_session, mailing, clock.now())
        await scheduler_session.commit()
    unsent, in_flight = await arrange.reports(scheduled)
    await arrange.reports_in(ReportStatus.SENDING, [in_flight.id])
    clock.advance(hours=2)

    async with clean_db.begin() as connection:
        [finished] = await repository.finish_mailings(connection, clock.now())
        assert await repository.finish_mailings(connection, clock.now()) == []
    assert (finished.mailing_id, finished.ended, finished.expired) == (mailing.id, True, 1)

    statuses = {report.id: report.status for report in await arrange.reports(mailing.id)}
    assert statuses == {unsent.id: ReportStatus.EXPIRED, in_flight.id: ReportStatus.SENDING}
    stored = await _load(sessionmaker, mailing.id)
    assert (stored.status, stored.finished_at) == (MailingStatus.FINISHED, clock.now())


async def test_a_mailing_finishes_early_only_when_running_with_every_report_final(
    sessionmaker: async_sessionmaker[AsyncSession],
    arrange: Arrange,
    clean_db: AsyncEngine,
    clock: FakeClock,
    scheduled: int,
) -> None:
    clock.advance(minutes=10)
    async with sessionmaker() as scheduler_session:
        mailing = await service.get(scheduler_session, scheduled)
        await service.start_mailing(scheduler_session, mailing, clock.now())
        await scheduler_session.commit()
    first, second = await arrange.reports(scheduled)
    await arrange.reports_in(ReportStatus.SENT, [first.id])
    await arrange.reports_in(ReportStatus.SENDING, [second.id])
    async with clean_db.begin() as connection:
        assert await repository.finish_mailings(connection, clock.now()) == []  # one in flight

    await arrange.reports_in(ReportStatus.FAILED, [second.id])
    await arrange.control("pause", scheduled)
    async with clean_db.begin() as connection:
        assert await repository.finish_mailings(connection, clock.now()) == []  # paused

    await arrange.control("resume", scheduled)
    async with clean_db.begin() as connection:
        [finished] = await repository.finish_mailings(connection, clock.now(), [mailing.id])
    assert (finished.ended, finished.expired) == (False, 0)
    assert (await _load(sessionmaker, mailing.id)).status == MailingStatus.FINISHED


async def test_new_send_window_makes_waiting_first_attempts_due_now(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock
) -> None:
    await arrange.clients([*CLIENTS, ClientSpec("79160000003", timezone=MOSCOW)])
    mailing_id = await arrange.mailing(lasts=timedelta(hours=2), send_window=("20:00", "21:00"))
    waiting, retrying, due = await arrange.reports(mailing_id)
    window_opens = clock.now() + timedelta(hours=5)
    await arrange.reports_in(ReportStatus.PENDING, [waiting.id], next_attempt_at=window_opens)
    await arrange.reports_in(
        ReportStatus.PENDING, [retrying.id], attempts=1, next_attempt_at=window_opens
    )
    clock.advance(minutes=1)

    response = await client.patch(
        f"/api/v1/mailings/{mailing_id}",
        json={"send_window": {"start": "00:00", "end": "23:59"}},
    )

    assert response.status_code == 200
    next_attempts = {r.id: r.next_attempt_at for r in await arrange.reports(mailing_id)}
    assert next_attempts == {
        waiting.id: clock.now(),
        retrying.id: window_opens,
        due.id: clock.now() - timedelta(minutes=1),
    }
