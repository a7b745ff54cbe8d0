"""A mail server that refuses, is down or hangs: retried with backoff, counted, never in the way."""

from __future__ import annotations

import asyncio
import socket

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from sms_sender.db import Notifier
from sms_sender.dispatch import DeliveryEngine, EngineTuning
from sms_sender.mailings import service as mailings_service
from sms_sender.mailings.schemas import MailingCreate, MailingFilter
from sms_sender.models import Client, Message, Notification, Report
from sms_sender.notifications.loop import NotificationTuning
from sms_sender.providers.fake import FakeProvider
from tests.conftest import FakeClock
from tests.notifications.conftest import Inbox, LoopFactory, SilentServer, mail_settings

pytestmark = pytest.mark.usefixtures("clean_db")


def failures() -> float:
    value = REGISTRY.get_sample_value(
        "sms_sender_notification_failures_total", {"channel": "email"}
    )
    return value or 0.0


async def stored(database: AsyncEngine) -> Notification:
    async with database.connect() as connection:
        row = (await connection.execute(select(Notification.__table__))).one()
    return Notification(**row._mapping)


async def test_a_refusing_server_is_retried_with_backoff_until_it_accepts(
    inbox: Inbox, make_loop: LoopFactory, database_url: str, clock: FakeClock, clean_db: AsyncEngine
) -> None:
    loop = make_loop(mail_settings(database_url, inbox.port))
    inbox.refuse = True
    before = failures()

    with capture_logs() as logs:
        assert await loop.tick() == 0
    refused = await stored(clean_db)
    assert (refused.status, refused.attempts) == ("pending", 1)
    assert refused.error is not None
    assert "mailbox busy" in refused.error
    assert refused.next_attempt_at == clock.now() + NotificationTuning().retry_base
    assert failures() == before + 1
    [warning] = [line for line in logs if line["event"] == "notification not sent; will try again"]
    assert "mailbox busy" in warning["error"]
    assert warning["day"] == "2030-01-14"

    assert await loop.tick() == 0  # not due yet: no hammering of a server that said "later"
    clock.advance(seconds=30)
    assert await loop.tick() == 0
    assert failures() == before + 2
    assert (
        await stored(clean_db)
    ).next_attempt_at == clock.now() + 2 * NotificationTuning().retry_base

    inbox.refuse = False
    clock.advance(minutes=1)
    assert await loop.tick() == 1
    sent = await stored(clean_db)
    assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 3, clock.now())
    assert len(inbox.messages) == 1


async def test_a_server_that_is_down_is_a_failure_with_its_reason(
    make_loop: LoopFactory, database_url: str, clean_db: AsyncEngine
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    loop = make_loop(mail_settings(database_url, closed_port))

    assert await loop.tick() == 0

    notification = await stored(clean_db)
    assert notification.status == "pending"
    assert notification.error is not None
    assert f"127.0.0.1:{closed_port}" in notification.error


async def test_a_hung_mail_server_holds_up_neither_sending_nor_shutdown(
    silent_smtp: SilentServer,
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    clock: FakeClock,
    clean_db: AsyncEngine,
) -> None:
    settings = mail_settings(database_url, silent_smtp.port, rate_limit=1_000_000.0)
    engine = DeliveryEngine(
        settings=settings,
        sessionmaker=sessionmaker,
        notifier=notifier,
        clock=clock,
        provider=FakeProvider(),
        tuning=EngineTuning(retry_after_error=0.1),
    )
    assert engine.notifications is not None
    mailing_id = await _mailing_to_ten_clients(sessionmaker, clock)

    async with asyncio.timeout(20):
        async with engine.running():
            await silent_smtp.connected.wait()  # the report is stuck in the mail server's silence
            while await _unsent(sessionmaker, mailing_id):  # noqa: ASYNC110 - rows fire no events
                await asyncio.sleep(0.01)

    # Stopped while waiting on the server: the report is handed back to be sent after restart.
    notification = await stored(clean_db)
    assert (notification.status, notification.error) == ("pending", "stopped while sending")


async def _mailing_to_ten_clients(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> int:
    now = clock.now()
    async with sessionmaker() as session, session.begin():
        session.add_all(
            Client(
                phone=f"7900000{n:04d}",
                operator_code="900",
                timezone="UTC",
                created_at=now,
                updated_at=now,
            )
            for n in range(10)
        )
        message = Message(text="hello", created_at=now, updated_at=now)
        session.add(message)
        await session.flush()
        payload = MailingCreate(
            start_at=now,
            end_at=now.replace(hour=23),
            message_id=message.id,
            filter=MailingFilter(),
        )
        return (await mailings_service.create(session, payload, now)).id


async def _unsent(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int) -> int:
    async with sessionmaker() as session:
        query = select(Report.id).where(
            Report.mailing_id == mailing_id, Report.status.in_(["pending", "sending"])
        )
        return len((await session.scalars(query)).all())
