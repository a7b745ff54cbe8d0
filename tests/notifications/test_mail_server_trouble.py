"""A mail server that refuses, is down or hangs: retried with backoff, counted, never in the way."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.config import parse_smtp_url
from sms_sender.db import Notifier
from sms_sender.dispatch import DeliveryEngine, EngineTuning
from sms_sender.models import Notification
from sms_sender.notifications import service
from sms_sender.notifications.loop import NotificationTuning
from sms_sender.notifications.mail import Mailer
from sms_sender.providers.fake import FakeProvider
from tests.arrange import Arrange
from tests.conftest import FakeClock
from tests.notifications.conftest import (
    Inbox,
    JsonLogs,
    LoopFactory,
    SilentServer,
    mail_settings,
    unsent,
)

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
    inbox: Inbox,
    make_loop: LoopFactory,
    database_url: str,
    clock: FakeClock,
    clean_db: AsyncEngine,
    json_logs: JsonLogs,
) -> None:
    loop = make_loop(mail_settings(database_url, inbox.port))
    inbox.refuse = True
    before = failures()

    assert await loop.tick() == 0
    refused = await stored(clean_db)
    assert (refused.status, refused.attempts) == ("pending", 1)
    assert refused.error is not None
    assert "mailbox busy" in refused.error
    assert refused.next_attempt_at == clock.now() + NotificationTuning().retry_base
    assert failures() == before + 1
    [warning] = json_logs.events("notification not sent; will try again")
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
    arrange: Arrange,
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
    await arrange.many_clients(10, operator_code="900")
    mailing_id = await arrange.mailing(text="hello", lasts=timedelta(hours=6))

    async with asyncio.timeout(20):
        async with engine.running():
            await silent_smtp.connected.wait()  # the report is stuck in the mail server's silence
            while await unsent(sessionmaker, mailing_id):  # noqa: ASYNC110 - rows fire no events
                await asyncio.sleep(0.01)

    # Stopped while waiting on the server: the report is handed back to be sent after restart.
    notification = await stored(clean_db)
    assert (notification.status, notification.error) == ("pending", "stopped while sending")


async def test_a_server_too_slow_to_answer_times_out_and_is_retried(
    silent_smtp: SilentServer, make_loop: LoopFactory, database_url: str, clean_db: AsyncEngine
) -> None:
    loop = make_loop(mail_settings(database_url, silent_smtp.port, smtp_timeout=0.2))

    assert await loop.tick() == 0

    notification = await stored(clean_db)
    assert notification.status == "pending"
    assert notification.error is not None
    assert "timed out" in notification.error.lower()


async def test_the_user_and_password_of_the_url_log_in_and_are_never_logged(
    inbox: Inbox, make_loop: LoopFactory, database_url: str, json_logs: JsonLogs
) -> None:
    url = f"smtp://reports:p%40ss%3Aw%2Frd@127.0.0.1:{inbox.port}"
    loop = make_loop(mail_settings(database_url, inbox.port, smtp_url=url))

    assert await loop.tick() == 1

    assert inbox.logins == [("reports", "p@ss:w/rd")]
    assert json_logs.events("notification sent")
    assert "p@ss:w/rd" not in json_logs.buffer.getvalue()


@pytest.mark.parametrize(
    ("url", "start_tls"),
    [
        ("smtp://reports:secret@mail.example.com", True),  # a password: STARTTLS or nothing
        ("smtp://mail.example.com", None),  # no password: STARTTLS when offered
        ("smtp://reports:secret@127.0.0.1:25", None),  # a relay on this machine
        ("smtp://reports:secret@[::1]:25", None),
        ("smtps://reports:secret@mail.example.com", False),  # TLS from the first byte
    ],
)
def test_a_password_never_crosses_the_network_in_clear(url: str, start_tls: bool | None) -> None:
    mailer = Mailer(parse_smtp_url(url), "sms-sender@example.com", timeout=1)
    assert mailer.start_tls == start_tls


async def test_a_bug_in_the_notifications_loop_does_not_stop_the_sending(
    inbox: Inbox,
    database_url: str,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    json_logs: JsonLogs,
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> list[object]:
        raise RuntimeError("a bug in the alerts")

    monkeypatch.setattr(service, "alerts_due", broken)
    settings = mail_settings(
        database_url, inbox.port, alert_to=["duty@example.com"], rate_limit=1_000_000.0
    )
    engine = DeliveryEngine(
        settings=settings,
        sessionmaker=sessionmaker,
        notifier=notifier,
        clock=clock,
        provider=FakeProvider(),
        tuning=EngineTuning(retry_after_error=0.1),
    )
    await arrange.many_clients(5, operator_code="900")
    mailing_id = await arrange.mailing(text="hello", lasts=timedelta(hours=6))

    async with asyncio.timeout(20), engine.running():
        while await unsent(sessionmaker, mailing_id):  # noqa: ASYNC110 - rows fire no events
            await asyncio.sleep(0.01)

    [failure] = json_logs.events("notifications loop failed")[:1]
    assert "a bug in the alerts" in failure["exception"]
