"""Arranging notification tests: a mail server and a webhook on 127.0.0.1, mailings as rows."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.config import LogFormat, Settings
from sms_sender.logging import configure_logging
from sms_sender.mailings.models import Mailing
from sms_sender.messages.models import Message
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


class Rows:
    """Mailings and their reports inserted as the engine leaves them, committed."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self._phone = 0

    async def mailing(
        self,
        *,
        status: str,
        started_at: datetime | None,
        start_at: datetime | None = None,
        finished_at: datetime | None = None,
        reports: dict[str, int] | None = None,
        errors: dict[str, str] | None = None,
        updated_at: datetime | None = None,
        **columns: Any,
    ) -> int:
        """A mailing with ``reports`` {status: count}; failed ones carry ``errors[status]``."""
        start_at = start_at or started_at
        if start_at is None:
            raise ValueError("a mailing needs a start_at or a started_at")
        async with self.sessionmaker() as session, session.begin():
            message = Message(text="Winter sale -20%", created_at=start_at, updated_at=start_at)
            session.add(message)
            await session.flush()
            mailing = Mailing(
                start_at=start_at,
                end_at=start_at + timedelta(days=2),
                message_id=message.id,
                filter_operator_codes=[],
                filter_tags=[],
                status=status,
                created_at=start_at,
                updated_at=start_at,
                started_at=started_at,
                finished_at=finished_at,
                **columns,
            )
            session.add(mailing)
            await session.flush()
            mailing_id = mailing.id
        await self.add_reports(mailing_id, reports or {}, errors, updated_at or start_at, start_at)
        return mailing_id

    async def add_reports(
        self,
        mailing_id: int,
        reports: dict[str, int],
        errors: dict[str, str] | None = None,
        updated_at: datetime | None = None,
        created_at: datetime | None = None,
    ) -> None:
        """``reports`` {status: count} more reports of the mailing; failed ones get ``errors``."""
        moment = updated_at or created_at
        if moment is None:
            raise ValueError("reports need an updated_at or a created_at")
        rows = []
        for report_status, count in reports.items():
            for _ in range(count):
                self._phone += 1
                rows.append(
                    {
                        "mailing_id": mailing_id,
                        "client_id": None,
                        "phone": f"7900{self._phone:07d}",
                        "text": "Winter sale -20%",
                        "timezone": "UTC",
                        "status": report_status,
                        "attempts": 1,
                        "next_attempt_at": created_at or moment,
                        "created_at": created_at or moment,
                        "updated_at": moment,
                        "error": (errors or {}).get(report_status),
                    }
                )
        if rows:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(insert(Report), rows)


@pytest.fixture
def rows(sessionmaker: async_sessionmaker[AsyncSession]) -> Rows:
    return Rows(sessionmaker)


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
