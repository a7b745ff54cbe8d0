"""A client deleted while a mailing is starting is never left with a report that would be sent.

The mailing's reports are made by one INSERT … SELECT over the clients, and reports have no
foreign key to clients. On PostgreSQL (READ COMMITTED) the two transactions could otherwise
interleave so that a report of the deleted client is made after the delete detached the
others; these tests hold one transaction open while the other runs, in both orders.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.clients import service as clients_service
from sms_sender.consent.rules import PhoneHasher
from sms_sender.mailings import service as mailings_service
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock
from tests.dispatch.conftest import eventually

pytestmark = pytest.mark.usefixtures("clean_db")

_WAITING_ON_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@dataclass(frozen=True)
class Someone:
    id: int
    phone: str


@pytest.fixture
async def clients(arrange: Arrange) -> list[Someone]:
    """The client to be deleted, then one who stays."""
    phones = ("79160000001", "79160000002")
    ids = await arrange.clients([ClientSpec(phone) for phone in phones])
    return [Someone(client_id, phone) for client_id, phone in zip(ids, phones, strict=True)]


@pytest.fixture
async def mailing_id(arrange: Arrange, clock: FakeClock) -> int:
    """A mailing to everyone, starting in ten minutes (the clock is then moved there)."""
    created = await arrange.mailing(start_in=timedelta(minutes=10), lasts=timedelta(hours=2))
    clock.advance(minutes=10)
    return created


async def start(
    sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int, now: datetime
) -> int | None:
    """Start the mailing as the scheduler does, in a transaction of its own."""
    async with sessionmaker() as session, session.begin():
        mailing = await mailings_service.get(session, mailing_id)
        return await mailings_service.start_mailing(session, mailing, now)


async def delete_client(
    sessionmaker: async_sessionmaker[AsyncSession], client_id: int, now: datetime
) -> None:
    async with sessionmaker() as session, session.begin():
        await clients_service.delete(session, client_id, hasher=PhoneHasher(b"test"), now=now)


async def until_waiting_or_done(engine: AsyncEngine, task: asyncio.Task[Any]) -> None:
    """Until the task has ended or (PostgreSQL) its transaction waits for a lock.

    On SQLite there is nothing to wait for: the task cannot even begin its transaction while
    the other one is open.
    """
    if engine.dialect.name != "postgresql":
        return

    async def waiting_or_done() -> bool:
        if task.done():
            return True
        async with engine.connect() as connection:
            return bool(await connection.scalar(_WAITING_ON_A_LOCK))

    await eventually(waiting_or_done, what="the second transaction waiting or done")


async def test_a_client_deleted_while_its_reports_are_made_has_them_detached(
    sessionmaker: async_sessionmaker[AsyncSession],
    arrange: Arrange,
    clean_db: AsyncEngine,
    clock: FakeClock,
    clients: list[Someone],
    mailing_id: int,
) -> None:
    leaving, staying = clients
    async with sessionmaker() as starting:
        mailing = await mailings_service.get(starting, mailing_id)
        assert await mailings_service.start_mailing(starting, mailing, clock.now()) == 2
        deleting = asyncio.create_task(delete_client(sessionmaker, leaving.id, clock.now()))
        await until_waiting_or_done(clean_db, deleting)
        await starting.commit()
    await deleting

    reports = await arrange.reports(mailing_id)
    assert [(r.client_id, r.phone, r.status, r.error) for r in reports] == [
        (None, leaving.phone, ReportStatus.CANCELLED, "client deleted"),
        (staying.id, staying.phone, ReportStatus.PENDING, None),
    ]


async def test_a_mailing_starting_while_a_client_is_deleted_makes_no_report_for_them(
    sessionmaker: async_sessionmaker[AsyncSession],
    arrange: Arrange,
    clean_db: AsyncEngine,
    clock: FakeClock,
    clients: list[Someone],
    mailing_id: int,
) -> None:
    leaving, staying = clients
    async with sessionmaker() as deleting:
        await clients_service.delete(
            deleting, leaving.id, hasher=PhoneHasher(b"test"), now=clock.now()
        )
        starting = asyncio.create_task(start(sessionmaker, mailing_id, clock.now()))
        await until_waiting_or_done(clean_db, starting)
        await deleting.commit()

    assert await starting == 1
    reports = await arrange.reports(mailing_id)
    assert [(r.client_id, r.status) for r in reports] == [(staying.id, ReportStatus.PENDING)]
