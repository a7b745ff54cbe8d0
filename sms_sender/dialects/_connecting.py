"""Connecting and waking: how each database is opened and signalled (its writer turn:
``_writer_turn.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    event,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.util import await_only

from sms_sender.dialects._sqlite_driver import one_hop_dbapi
from sms_sender.dialects._which import Bind, on_postgresql
from sms_sender.dialects._writer_turn import _LAZY_TURN_OPTION, turn_to_take_at_begin

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
    kwargs.setdefault("module", one_hop_dbapi())  # a statement is one hop to aiosqlite's thread
    engine = create_async_engine(
        url, connect_args={"timeout": 30}, pool_reset_on_return=None, **kwargs
    )
    _configure_sqlite(engine)
    return engine


def _ping_at_checkout(engine: AsyncEngine) -> None:
    """Replace a pooled connection the server has dropped before a unit of work gets it.

    What ``pool_pre_ping`` does (three round trips with asyncpg: BEGIN, ";", ROLLBACK) in no
    round trip of its own: the unit of work's BEGIN, which SQLAlchemy's asyncpg adapter would
    send before the first statement, is sent at checkout and answers the same question. A
    connection in autocommit has no transaction to begin and asks with a ``SELECT 1``.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            if dbapi_connection.isolation_level == "autocommit":
                dbapi_connection.run_async(lambda driver: driver.execute("SELECT 1"))
            else:
                # The adapter's own BEGIN (with its isolation settings); its first statement
                # then finds the transaction open. Returned unused, the pool's reset ends it.
                await_only(dbapi_connection._start_transaction())
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
        if not reset_state.terminate_only and dbapi_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: a read-then-write transaction can then wait
        # on busy_timeout instead of failing with SQLITE_BUSY when another writer got there first.
        # A read-only unit of work (see read_only) reads a WAL snapshot beside the writer instead.
        options = connection.get_execution_options()
        # Sent with the transaction's first statement, in the same hop (_sqlite_driver.py).
        begin = connection.connection.dbapi_connection.begin
        if options.get(_READ_ONLY_OPTION):
            begin("BEGIN")
            return
        turn = turn_to_take_at_begin(options)
        if turn is not None:
            # Events are sync, but run in SQLAlchemy's greenlet under the awaiting task: this
            # waits for the turn in the event loop, as the driver's own awaits do.
            await_only(turn.take())
            connection.connection.record_info[_LAZY_TURN_OPTION] = turn
        begin("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        # A unit of work's connection comes back after its COMMIT or ROLLBACK: its turn ends.
        turn = record.record_info.pop(_LAZY_TURN_OPTION, None)
        if turn is not None:
            turn.give_back()


_READ_ONLY_OPTION = "sms_sender_read_only"


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine for work that only reads: on SQLite it never waits for the write lock."""
    return engine.execution_options(**{_READ_ONLY_OPTION: True})


# --- Writing -------------------------------------------------------------------------------


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
