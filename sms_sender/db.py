"""Database plumbing: declarative Base, engine factory, after-commit wake-ups.

SQLite is the embedded default and PostgreSQL the production engine; both are reached through
SQLAlchemy's async API, with URLs normalised so that ``postgresql://`` and ``sqlite:///x.db``
work as people type them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event, text
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import Pool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# The largest id either database can store; the API refuses larger ones with a 422, not a 500.
MAX_ID = 2**63 - 1


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both engines.

    SQLite has no time zone type: values are stored as naive UTC text (which sorts correctly)
    and come back aware, so the code never meets a naive datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalise_url(raw: str) -> URL:
    """Map the URLs people write to the async drivers this service uses."""
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername in ("sqlite", "sqlite+pysqlite"):
        url = url.set(drivername="sqlite+aiosqlite")
    return url


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def create_engine(raw_url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for the URL; SQLite gets WAL, a busy timeout and IMMEDIATE transactions."""
    url = normalise_url(raw_url)
    # An error's message would otherwise carry the statement's values (phones, texts) into logs.
    kwargs.setdefault("hide_parameters", True)
    if not is_sqlite(url):
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        ping = "pool_pre_ping" not in kwargs
        engine = create_async_engine(url, **kwargs)
        if ping:
            _ping_at_checkout(engine)
        return engine
    # The pool's reset is done by _configure_sqlite, which skips it when nothing is open.
    engine = create_async_engine(
        url, connect_args={"timeout": 30}, pool_reset_on_return=None, **kwargs
    )
    _configure_sqlite(engine)
    return engine


def _ping_at_checkout(engine: AsyncEngine) -> None:
    """Replace a pooled connection the server has dropped before a unit of work gets it.

    What ``pool_pre_ping`` does, in one round trip instead of its three with asyncpg
    (BEGIN, ";", ROLLBACK): a simple-protocol query needs no transaction, even behind pgbouncer.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            dbapi_connection.run_async(lambda driver: driver.execute("SELECT 1"))
        except Exception as error:  # any failure means the connection is unusable
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(f"pooled connection is gone: {error!r}") from error


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (the driver's own handling breaks SAVEPOINT).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, reset_state: Any) -> None:
        # The pool's rollback on return, but only when a transaction is still open: after a
        # commit it would be a needless hop to aiosqlite's thread on every request.
        if not reset_state.terminate_only and dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: a read-then-write transaction can then wait
        # on busy_timeout instead of failing with SQLITE_BUSY when another writer got there first.
        # A read-only unit of work (see read_only) reads a WAL snapshot beside the writer instead.
        if connection.get_execution_options().get(_READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


_READ_ONLY_OPTION = "sms_sender_read_only"


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine for work that only reads: on SQLite it never waits for the write lock."""
    return engine.execution_options(**{_READ_ONLY_OPTION: True})


# One per SQLite database this process writes to, keyed by the engine's pool (which its
# option variants such as read_only share), with the event loop the lock belongs to.
_SQLITE_WRITERS: WeakKeyDictionary[Pool, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    WeakKeyDictionary()
)


def writer_turn(engine: AsyncEngine) -> contextlib.AbstractAsyncContextManager[Any]:
    """Hold this while writing through ``engine``: on SQLite, this process's writers queue here.

    SQLite lets one writer in at a time. A transaction that finds the lock taken sleeps in
    SQLite's busy handler, for 1, 2, 5, 10, 15 … ms at a time, and so starts up to 10-25 ms
    after the lock came free: in the engine, where a claim, a hand-over and a results write
    often meet, that idled every send slot for 10-25 ms per group. Queued on an asyncio lock,
    the next writer of this process starts the moment the last one ends. Writers in other
    processes (a second ``serve``, the CLI) still meet in the busy handler. PostgreSQL's rows
    are locked one by one, so there it is nothing.
    """
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    pool, loop = engine.sync_engine.pool, asyncio.get_running_loop()
    owner, lock = _SQLITE_WRITERS.get(pool, (None, None))
    if owner is not loop or lock is None:  # first use, or an engine outliving its loop (tests)
        lock = asyncio.Lock()
        _SQLITE_WRITERS[pool] = (loop, lock)
    return lock


@contextlib.asynccontextmanager
async def begin_write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()`` in this process's turn to write (see :func:`writer_turn`)."""
    async with writer_turn(engine), engine.begin() as connection:
        yield connection


def create_sessionmaker(
    engine: AsyncEngine, notifier: Notifier | None = None
) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine, expire_on_commit=False, info={"notifier": notifier or Notifier()}
    )


class Notifier:
    """In-process wake-ups fired after a commit (PostgreSQL adds LISTEN/NOTIFY across processes).

    A service calls :func:`notify` to say "the schedule changed" or "reports are due"; waiters
    (the scheduler and the workers of this process) are woken only once the change is committed.
    """

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)

    def subscribe(self, channel: str) -> asyncio.Event:
        wake = asyncio.Event()
        self._events[channel].add(wake)
        return wake

    def unsubscribe(self, channel: str, wake: asyncio.Event) -> None:
        self._events[channel].discard(wake)

    def fire(self, channel: str) -> None:
        for wake in self._events.get(channel, ()):
            wake.set()


CHANNEL_MAILINGS = "sms_sender_mailings"
CHANNEL_REPORTS = "sms_sender_reports"


async def notify(session: AsyncSession, channel: str) -> None:
    """Wake the engine once this transaction commits, in this process and (PostgreSQL) in others."""
    session.info.setdefault("pending_notifications", set()).add(channel)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # NOTIFY is transactional in PostgreSQL: listeners hear it only after COMMIT.
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


@event.listens_for(Session, "after_commit")
def _fire_pending_notifications(session: Session) -> None:
    channels = session.info.pop("pending_notifications", set())
    notifier = session.info.get("notifier")
    if notifier is not None:
        for channel in channels:
            notifier.fire(channel)


@event.listens_for(Session, "after_rollback")
def _drop_pending_notifications(session: Session) -> None:
    session.info.pop("pending_notifications", None)


__all__ = [
    "CHANNEL_MAILINGS",
    "CHANNEL_REPORTS",
    "MAX_ID",
    "Base",
    "BigId",
    "Notifier",
    "UTCDateTime",
    "begin_write",
    "create_engine",
    "create_sessionmaker",
    "normalise_url",
    "notify",
    "read_only",
    "writer_turn",
]
