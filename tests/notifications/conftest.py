"""Arranging notification tests: a mail server and a webhook on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.config import LogFormat, Settings
from sms_sender.logging import configure_logging
from sms_sender.mailings.models import Mailing
from sms_sender.notifications.loop import NotificationLoop
from sms_sender.reports.models import Report
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

LOOPBACK = "127.0.0.1"


@dataclass
class Inbox:
    """What an SMTP server on 127.0.0.1 received; ``refuse`` makes it answer 451 to DATA."""

    port: int = 0
    refuse: bool = False
    logins: list[tuple[str, str]] = field(default_factory=list)
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return "451 4.3.0 mailbox busy, try again later"
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        self.recipients.append(list(envelope.rcpt_tos))
        self.arrived.set()
        return "250 2.0.0 queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Accept any login and remember it (aiosmtpd's authenticator hook)."""
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    """An aiosmtpd server in this event loop, on a free port of 127.0.0.1."""
    received = Inbox()
    loop = asyncio.get_running_loop()
    # Logins over plain text are allowed: on 127.0.0.1 the service does not insist on STARTTLS.
    server = await loop.create_server(
        lambda: SMTP(received, authenticator=received.authenticate, auth_require_tls=False),
        LOOPBACK,
        0,
    )
    received.port = server.sockets[0].getsockname()[1]
    try:
        yield received
    finally:
        server.close()


@dataclass
class SilentServer:
    port: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def silent_smtp() -> AsyncIterator[SilentServer]:
    """A port on 127.0.0.1 that accepts connections and never says a word (a hung server)."""
    silent = SilentServer()
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        silent.connected.set()

    server = await asyncio.start_server(hold, LOOPBACK, 0)
    silent.port = server.sockets[0].getsockname()[1]
    try:
        yield silent
    finally:
        for writer in held:
            writer.close()
        server.close()


@dataclass
class Webhook:
    url: str = ""
    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    """An HTTP endpoint on 127.0.0.1 that records the JSON posted to it."""
    hook = Webhook()

    async def receive(request: web.Request) -> web.Response:
        hook.bodies.append(await request.json())
        return web.Response(status=hook.status)

    application = web.Application()
    application.router.add_post("/hooks/alerts", receive)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = runner.addresses[0][1]
    hook.url = f"http://{LOOPBACK}:{port}/hooks/alerts"
    try:
        yield hook
    finally:
        await runner.cleanup()


def mail_settings(database_url: str, smtp_port: int, **fields: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "provider": "fake",
        "smtp_url": f"smtp://{LOOPBACK}:{smtp_port}",
        "report_from": "sms-sender@example.com",
        "report_to": ["ops@example.com", "boss@example.com"],
        "report_time": "08:00",
        "report_timezone": "Europe/Moscow",
        "public_url": "https://sms.example.com",
    }
    return Settings(**(values | fields))


LoopFactory = Callable[..., NotificationLoop]


@pytest.fixture
def make_loop(clean_db: AsyncEngine, clock: FakeClock) -> LoopFactory:
    """A notifications loop as the engine builds it, for the given settings and owner."""

    def make(
        settings: Settings, owner: str = "worker-a", database: AsyncEngine | None = None
    ) -> NotificationLoop:
        return NotificationLoop(
            settings=settings, database=database or clean_db, clock=clock, owner=owner
        )

    return make


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


async def unsent(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).where(
            Report.mailing_id == mailing_id, Report.status.in_(["pending", "sending"])
        )
        return int(await session.scalar(query) or 0)


async def mailing_status(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int) -> str:
    async with sessionmaker() as session:
        return str(await session.scalar(select(Mailing.status).where(Mailing.id == mailing_id)))


class JsonLogs:
    """The JSON log lines written since the fixture began."""

    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines() if line]

    def events(self, prefix: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if str(line["event"]).startswith(prefix)]


@pytest.fixture
def json_logs() -> Iterator[JsonLogs]:
    """Every log line as JSON, in a buffer (through the service's own logging set-up).

    Not structlog's capture_logs: loggers first used inside it keep its processors for good
    (cache_logger_on_first_use), and later tests that read the logs would see nothing.
    """
    structlog.reset_defaults()
    buffer = io.StringIO()
    configure_logging(LogFormat.JSON, "INFO", stream=buffer)
    yield JsonLogs(buffer)
    configure_logging()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
