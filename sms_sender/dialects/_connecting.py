"""Connecting, writing and waking: how each database is opened, written and signalled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    event,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import Pool

from sms_sender.dialects._which import Bind, on_postgresql

# --- Connecting ----------------------------------------------------------------------------


def create_engine_for(url: URL, **kwargs: Any) -> AsyncEngine:
    """An engine for the URL; SQLite gets WAL, a busy timeout and IMMEDIATE transactions."""
    if url.get_backend_name() != "sqlite":
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


# --- Writing -------------------------------------------------------------------------------


def writes_lock_whole_database(bind: Bind) -> bool:
    """SQLite: a writing transaction holds the only write lock. PostgreSQL locks rows."""
    return not on_postgresql(bind)


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
    if not writes_lock_whole_database(engine):
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


async def advisory_lock(
    bind: AsyncConnection | AsyncSession, key: int, *, shared: bool = False
) -> None:
    """Take the lock named ``key`` until this transaction ends (``shared``: beside other sharers).

    PostgreSQL: ``pg_advisory_xact_lock`` (or its ``_shared`` form). SQLite: nothing to do, the
    writing transaction already holds the whole database (transactions begin IMMEDIATE).
    """
    if not on_postgresql(bind):
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await bind.execute(text(f"SELECT {function}(:key)"), {"key": key})


# --- Wake-ups ------------------------------------------------------------------------------


def listens_across_processes(bind: Bind) -> bool:
    """Whether other processes can be woken through the database (PostgreSQL's LISTEN/NOTIFY)."""
    return on_postgresql(bind)


async def notify_other_processes(session: AsyncSession, channel: str) -> None:
    """Wake the database's listeners on ``channel`` once this transaction commits.

    PostgreSQL: ``NOTIFY`` is transactional, listeners hear it only after COMMIT. SQLite has no
    such signal: other processes find the change when they next poll.
    """
    if listens_across_processes(session):
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})
