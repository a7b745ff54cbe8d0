"""What the engine's scheduler does to mailings: start_mailing, and finish_mailings at the end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.db import CHANNEL_REPORTS, Notifier
from sms_sender.dispatch import repository
from sms_sender.mailings import service
from sms_sender.mailings.models import Mailing, MailingStatus
from sms_sender.reports.models import ReportStatus
from tests.conftest import FakeClock
from tests.mailings.factories import (
    add_clients,
    add_message,
    create_mailing,
    mailing_body,
    reports_of,
    set_report_status,
)

pytestmark = pytest.mark.usefixtures("clean_db")

CLIENTS = (("79160000001", "916", "vip"), ("79160000002", "916", None))


@pytest.fixture
async def scheduled(
    client: httpx.AsyncClient, session: AsyncSession, clock: FakeClock
) -> dict[str, Any]:
    await add_clients(session, clock.now(), *CLIENTS)
    body = mailing_body(await add_message(client), clock.now(), starts_in=timedelta(minutes=10))
    return await create_mailing(client, body)


async def _load(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int) -> Mailing:
    async with sessionmaker() as session:
        return await service.get(session, mailing_id)


async def test_start_mailing_starts_once_even_when_called_twice(
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    clock: FakeClock,
    notifier: Notifier,
    scheduled: dict[str, Any],
) -> None:
    # Two schedulers that both saw the mailing as scheduled, each in its own transaction.
    seen_by_first = await _load(sessionmaker, scheduled["id"])
    seen_by_second = await _load(sessionmaker, scheduled["id"])
    reports_due = notifier.subscribe(CHANNEL_REPORTS)
    clock.advance(minutes=10)

    async with sessionmaker() as first:
        assert await service.start_mailing(first, seen_by_first, clock.now()) == len(CLIENTS)
        await first.commit()
    assert reports_due.is_set()
    async with sessionmaker() as second:
        assert await service.start_mailing(second, seen_by_second, clock.now()) is None
        await second.commit()

    assert len(await reports_of(session, scheduled["id"])) == len(CLIENTS)
    started = await _load(sessionmaker, scheduled["id"])
    assert (started.status, started.started_at) == (MailingStatus.RUNNING, clock.now())


async def test_start_mailing_leaves_a_paused_mailing_alone(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    clock: FakeClock,
    scheduled: dict[str, Any],
) -> None:
    mailing = await _load(sessionmaker, scheduled["id"])
    await client.post(f"/api/v1/mailings/{scheduled['id']}/pause")
    clock.advance(minutes=10)

    async with sessionmaker() as scheduler_session:
        assert await service.start_mailing(scheduler_session, mailing, clock.now()) is None
        await scheduler_session.commit()

    assert await reports_of(session, scheduled["id"]) == []
    assert (await _load(sessionmaker, scheduled["id"])).status == MailingStatus.PAUSED


async def test_finishing_at_the_end_expires_what_was_not_sent(
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    clean_db: AsyncEngine,
    clock: FakeClock,
    scheduled: dict[str, Any],
) -> None:
    clock.advance(minutes=10)
    async with sessionmaker() as scheduler_session:
        mailing = await service.get(scheduler_session, scheduled["id"])
        await service.start_mailing(scheduler_session, mailing, clock.now())
        await scheduler_session.commit()
    unsent, in_flight = await reports_of(session, scheduled["id"])
    await set_report_status(session, [in_flight.id], ReportStatus.SENDING)
    clock.advance(hours=2)

    async with clean_db.begin() as connection:
        [finished] = await repository.finish_mailings(connection, clock.now())
        assert await repository.finish_mailings(connection, clock.now()) == []
    assert (finished.mailing_id, finished.ended, finished.expired) == (mailing.id, True, 1)

    statuses = {report.id: report.status for report in await reports_of(session, mailing.id)}
    assert statuses == {unsent.id: ReportStatus.EXPIRED, in_flight.id: ReportStatus.SENDING}
    stored = await _load(sessionmaker, mailing.id)
    assert (stored.status, stored.finished_at) == (MailingStatus.FINISHED, clock.now())


async def test_a_mailing_finishes_early_only_when_running_with_every_report_final(
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    clean_db: AsyncEngine,
    clock: FakeClock,
    scheduled: dict[str, Any],
) -> None:
    clock.advance(minutes=10)
    async with sessionmaker() as scheduler_session:
        mailing = await service.get(scheduler_session, scheduled["id"])
        await service.start_mailing(scheduler_session, mailing, clock.now())
        await scheduler_session.commit()
    first, second = await reports_of(session, scheduled["id"])
    await set_report_status(session, [first.id], ReportStatus.SENT)
    await set_report_status(session, [second.id], ReportStatus.SENDING)
    async with clean_db.begin() as connection:
        assert await repository.finish_mailings(connection, clock.now()) == []  # one in flight

    await set_report_status(session, [second.id], ReportStatus.FAILED)
    await service.pause(session, scheduled["id"], clock.now())
    await session.commit()
    async with clean_db.begin() as connection:
        assert await repository.finish_mailings(connection, clock.now()) == []  # paused

    await service.resume(session, scheduled["id"], clock.now())
    await session.commit()
    async with clean_db.begin() as connection:
        [finished] = await repository.finish_mailings(connection, clock.now(), [mailing.id])
    assert (finished.ended, finished.expired) == (False, 0)
    assert (await _load(sessionmaker, mailing.id)).status == MailingStatus.FINISHED


async def test_new_send_window_makes_waiting_first_attempts_due_now(
    client: httpx.AsyncClient, session: AsyncSession, clock: FakeClock
) -> None:
    await add_clients(session, clock.now(), *CLIENTS, ("79160000003", "916", None))
    body = mailing_body(
        await add_message(client), clock.now(), send_window={"start": "20:00", "end": "21:00"}
    )
    mailing = await create_mailing(client, body)
    waiting, retrying, due = await reports_of(session, mailing["id"])
    window_opens = clock.now() + timedelta(hours=5)
    await set_report_status(
        session, [waiting.id], ReportStatus.PENDING, next_attempt_at=window_opens
    )
    await set_report_status(
        session, [retrying.id], ReportStatus.PENDING, attempts=1, next_attempt_at=window_opens
    )
    clock.advance(minutes=1)

    response = await client.patch(
        f"/api/v1/mailings/{mailing['id']}",
        json={"send_window": {"start": "00:00", "end": "23:59"}},
    )

    assert response.status_code == 200
    next_attempts = {r.id: r.next_attempt_at for r in await reports_of(session, mailing["id"])}
    assert next_attempts == {
        waiting.id: clock.now(),
        retrying.id: window_opens,
        due.id: clock.now() - timedelta(minutes=1),
    }
