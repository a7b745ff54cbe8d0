"""Database fixtures: every database test runs once on SQLite and once on PostgreSQL.

PostgreSQL comes from ``SMS_SENDER_TEST_POSTGRES_URL`` (an admin URL; each run creates and
drops its own database). Without it the PostgreSQL half is skipped on a laptop and *fails* in CI
(``CI=true``), so a broken CI set-up can never pass with half the suite silently missing.

Test data is made one way, by the ``arrange`` fixture (tests/arrange.py, tests/README.md).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest
import structlog
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.app import create_app
from sms_sender.auth import service as auth_service
from sms_sender.config import Settings
from sms_sender.db import Notifier, create_engine, create_sessionmaker, normalise_url
from sms_sender.migrations import upgrade_to_head
from tests.arrange import Arrange

POSTGRES_ENV = "SMS_SENDER_TEST_POSTGRES_URL"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TABLES = (
    "notifications",
    "reports",
    "mailings",
    "messages",
    "clients",
    "api_tokens",
    "user_sessions",
    "users",
    "audit_entries",
    "worker_heartbeats",
    "consent_events",
    "suppressions",
    # After reports and clients: emptying those on SQLite fires the counters' triggers.
    "mailing_report_counts",
    "client_facet_counts",
    "client_former_phones",
    "rate_limits",
    "login_failures",
)
# Kept from test to test: the suppression key is stored once, by the migration.
KEPT_TABLES = ("suppression_keys",)


class FakeClock:
    """A clock that moves only when a test says so; moving it wakes whoever sleeps past then."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, asyncio.Event]] = []

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.set(self.current + timedelta(**delta))
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when
        for deadline, reached in self._sleepers:
            if deadline <= when:
                reached.set()

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        if when <= self.current or wake.is_set():
            return
        sleeper = (when, asyncio.Event())
        self._sleepers.append(sleeper)
        waits = [asyncio.ensure_future(sleeper[1].wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            self._sleepers.remove(sleeper)


@pytest.fixture(autouse=True, scope="session")
def _loggers_follow_reconfiguration() -> Iterator[None]:
    """No logger keeps the configuration it first met (production caches it, for speed).

    Tests reconfigure logging (the CLI runs in-process and sets its own level; log-capturing
    fixtures point it at a buffer): a logger cached during one test would otherwise keep that
    test's level and format, and a later test would miss its lines depending on the order.
    """
    configure = structlog.configure

    def without_cache(**options: Any) -> None:
        configure(**options | {"cache_logger_on_first_use": False})

    with patch.object(structlog, "configure", without_cache):
        yield


def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if IN_CI:
        pytest.fail(f"{POSTGRES_ENV} is not set: CI must run every test on PostgreSQL too")
    pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (make test-pg starts a server)")


async def _admin_execute(admin_url: str, statement: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh, migrated database of each kind for the whole run."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "sms_sender.db"
        yield f"sqlite:///{path}"
        return
    admin_url = postgres_admin_url()
    name = f"sms_sender_test_{uuid.uuid4().hex[:12]}"
    await _admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield normalise_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def dialect(db_engine: AsyncEngine) -> str:
    return db_engine.dialect.name


@pytest.fixture
async def clean_db(db_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The engine, with every table emptied after the test so no test sees another's rows.

    Emptying beats a rolled-back outer transaction here: engine tests run the worker, the API
    and sometimes other processes against the same database, and those need real commits.
    """
    yield db_engine
    async with db_engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def notifier() -> Notifier:
    return Notifier()


@pytest.fixture
def sessionmaker(clean_db: AsyncEngine, notifier: Notifier) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(clean_db, notifier)


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for arranging and inspecting rows; the test commits what others must see."""
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def arrange(sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock) -> Arrange:
    """Test data (clients, mailings, reports in a status): see tests/arrange.py."""
    return Arrange(sessionmaker, clock)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, provider="fake")


@pytest.fixture
async def app(
    settings: Settings, clock: FakeClock, clean_db: AsyncEngine, notifier: Notifier
) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock, db_engine=clean_db)
    application.state.notifier = notifier
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def token(sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock) -> str:
    async with sessionmaker() as session:
        created = await auth_service.create_token(session, "tests", clock.now())
        await session.commit()
    return created


@pytest.fixture
async def anon_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI, with no credentials."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def client(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI, authenticated with a fresh token."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def auditor(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI with a token that may read the audit log (named ``auditor``)."""
    async with sessionmaker() as session:
        created = await auth_service.create_token(session, "auditor", clock.now(), reads_audit=True)
        await session.commit()
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {created}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, a run in which no PostgreSQL test passed is a failed run."""
    if not IN_CI or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    passed = reporter.stats.get("passed", []) if reporter else []
    if not any("postgresql" in report.nodeid for report in passed):
        print(f"\nCI: no PostgreSQL test passed; is {POSTGRES_ENV} set?")
        session.exitstatus = 1
