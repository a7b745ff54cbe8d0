"""Every difference between SQLite and PostgreSQL: one named operation each, side by side.

The rest of the package asks this module and never looks at the dialect's name itself, so a fix
made for one database is made beside the other's (``tests/test_dialects.py`` fails on a new
``dialect.name`` anywhere else). The differences, and why they exist:

- Connecting (:func:`create_engine_for`, :func:`read_only`): PostgreSQL gets a pool and a ping
  at checkout; SQLite gets WAL, a busy timeout and IMMEDIATE transactions.
- Writing (:func:`writer_turn`, :func:`begin_write`, :func:`writes_lock_whole_database`,
  :func:`advisory_lock`): SQLite lets one writer at a time into the whole file; PostgreSQL
  locks rows, so concurrent writers need explicit locks where they must not overlap.
- Statements (:func:`insert_ignoring_conflicts`, :func:`insert_or_update`, :func:`given_rows`,
  :func:`update_from_rows`, :func:`skip_locked`, :func:`planner_setting`, :func:`greatest`,
  :func:`epoch_seconds`, :func:`now_epoch_seconds`): the same meaning in each one's syntax.
- Storage (:func:`stored_datetime`): SQLite has no time zone type.
- Triggers (:func:`row_trigger_dropped`): SQLite's counting triggers run once per row,
  PostgreSQL's once per statement.
- Wake-ups (:func:`notify_other_processes`, :func:`listens_across_processes`): PostgreSQL's
  LISTEN/NOTIFY reaches other processes; SQLite has nothing of the kind, they poll.

Alembic revisions (``sms_sender/migrations/``) keep their own branches on the dialect: a
revision is frozen history and must go on building the schema it built when it was written,
whatever this module becomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Insert,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    cast,
    column,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.pool import Pool
from sqlalchemy.sql import Select
from sqlalchemy.types import TypeEngine

# Whatever a caller holds: the dialect is read from it.
Bind = AsyncConnection | AsyncSession | AsyncEngine | Dialect


def _dialect(bind: Bind) -> Dialect:
    if isinstance(bind, Dialect):
        return bind
    if isinstance(bind, AsyncSession):
        return bind.get_bind().dialect
    return bind.dialect


def _postgresql(bind: Bind) -> bool:
    return _dialect(bind).name == "postgresql"


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
    return not _postgresql(bind)


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
    if not _postgresql(bind):
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await bind.execute(text(f"SELECT {function}(:key)"), {"key": key})


# --- Statements ----------------------------------------------------------------------------


def insert_ignoring_conflicts(
    bind: Bind,
    target: Any,
    conflict_on: tuple[str, ...],
    returning: tuple[ColumnElement[Any], ...] = (),
) -> Insert:
    """``INSERT … ON CONFLICT (conflict_on) DO NOTHING [RETURNING …]`` into a table or entity.

    Both databases spell it the same, but SQLAlchemy builds it from each dialect's own
    ``insert``. Built once per database and shape (building costs more than running it).
    """
    return _insert_ignoring_conflicts(_postgresql(bind), target, conflict_on, returning)


@cache
def _insert_ignoring_conflicts(
    on_postgresql: bool,
    target: Any,
    conflict_on: tuple[str, ...],
    returning: tuple[ColumnElement[Any], ...],
) -> Insert:
    module = postgresql if on_postgresql else sqlite
    statement = module.insert(target).on_conflict_do_nothing(index_elements=list(conflict_on))
    return statement.returning(*returning) if returning else statement  # type: ignore[no-any-return]


def insert_or_update(
    bind: Bind,
    target: Any,
    values: Mapping[str, Any],
    conflict_on: tuple[str, ...],
    set_: Mapping[str, Any],
) -> Insert:
    """``INSERT … VALUES … ON CONFLICT (conflict_on) DO UPDATE SET …`` (an upsert).

    In ``set_``, the target's columns are the row already there; both databases spell it the
    same, from each dialect's own ``insert``.
    """
    module = postgresql if _postgresql(bind) else sqlite
    statement = module.insert(target).values(**values)
    return statement.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(conflict_on), set_=dict(set_)
    )


def given_rows(
    bind: AsyncConnection | AsyncSession,
    columns: Mapping[str, TypeEngine[Any]],
    rows: Sequence[Sequence[Any]],
) -> dict[str, ColumnElement[Any]]:
    """The rows as a table the statement reads: a column expression per name, in ``columns`` order.

    The statement is the same for any number of rows (compiled once, cached), and no value is
    handled one by one by SQLAlchemy. PostgreSQL: ``unnest(:a, :b, …) AS given(…)``, one array
    parameter per column. SQLite: ``json_each(:rows)``, one JSON array of arrays read with
    ``json_extract``; each value is first converted as its column type would bind it, so a
    datetime is stored exactly as everywhere else.
    """
    dialect = _dialect(bind)
    if dialect.name == "postgresql":
        by_column = [list(values) for values in zip(*rows, strict=True)] or [[] for _ in columns]
        arrays = [
            bindparam(None, values, type_=postgresql.ARRAY(type_))
            for values, type_ in zip(by_column, columns.values(), strict=True)
        ]
        given = (
            func.unnest(*arrays)
            .table_valued(*(column(name, type_) for name, type_ in columns.items()))
            .render_derived(name="given")
        )
        return {name: given.c[name] for name in columns}
    converters = [type_.dialect_impl(dialect).bind_processor(dialect) for type_ in columns.values()]
    document = json.dumps(
        [
            [
                value if convert is None else convert(value)
                for value, convert in zip(row, converters, strict=True)
            ]
            for row in rows
        ]
    )
    each = func.json_each(bindparam(None, document, type_=String())).table_valued("value")
    return {
        name: func.json_extract(each.c.value, f"$[{index}]", type_=type_)
        for index, (name, type_) in enumerate(columns.items())
    }


def among(bind: Bind, id_column: ColumnElement[int], ids: Collection[int]) -> ColumnElement[bool]:
    """``id_column IN ids`` as one parameter, so the statement is the same for any count.

    An ``IN (…)`` list is a different statement for every length: compiled again by
    SQLAlchemy, and on PostgreSQL prepared again (a round trip) once the driver's statement
    cache has rolled over. PostgreSQL takes an array (``= ANY(:ids)``), SQLite a JSON array
    (``IN (SELECT value FROM json_each(:ids))``).
    """
    if _postgresql(bind):
        return id_column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(BigInteger())))
    given = func.json_each(bindparam(None, json.dumps(list(ids)), type_=String())).table_valued(
        "value"
    )
    return id_column.in_(select(given.c.value))


RowValues = Callable[[Mapping[str, ColumnElement[Any]]], dict[str, Any]]


async def update_from_rows(
    connection: AsyncConnection,
    table: Table,
    columns: Mapping[str, TypeEngine[Any]],
    rows: Sequence[Sequence[Any]],
    assign: RowValues,
    *,
    guard: Sequence[ColumnElement[bool]] = (),
) -> int:
    """Give each row of ``table`` (``rows[i][0]`` is its ``id``) its own values, in one round trip.

    ``UPDATE table … FROM`` the :func:`given_rows`, where ``assign`` maps the given columns to
    the values to set and ``guard`` is what each row must still match. How many rows changed.
    """
    if not rows:
        return 0
    fields = given_rows(connection, columns, rows)
    statement = update(table).where(table.c.id == fields["id"], *guard)
    # PostgreSQL: the plan must start from the given rows and find each row by its primary key.
    # A custom plan (asyncpg's first five runs of a statement on each connection) trusts the
    # statistics of the guard's columns instead, which lag behind a running mailing: taken when
    # no report was `sending`, they promise one matching row, and the planner scans the whole
    # table and re-reads the given rows for every match, 0.6 s for 1,000 reports of a
    # 50,000-report mailing instead of 30 ms. The generic plan knows no array length and always
    # takes the primary-key path.
    await planner_setting(connection, "plan_cache_mode", "force_generic_plan")
    result = await connection.execute(statement.values(**assign(fields)))
    return int(result.rowcount)


def skip_locked(query: Select[Any], bind: Bind, *, of: Table) -> Select[Any]:
    """``FOR UPDATE OF of SKIP LOCKED`` on PostgreSQL, so concurrent claimers take disjoint rows.

    SQLite: the query as it is; transactions begin IMMEDIATE, one writer at a time, so the
    statement that reads the rows is just as exclusive without it.
    """
    if not _postgresql(bind):
        return query
    return query.with_for_update(of=of, skip_locked=True)


async def planner_setting(connection: AsyncConnection, name: str, value: str) -> None:
    """Set a PostgreSQL planner setting until this transaction ends; SQLite has none: nothing."""
    if _postgresql(connection):
        await connection.execute(text(f"SET LOCAL {name} = {value}"))


def greatest(
    bind: Bind, *values: ColumnElement[Any] | QueryableAttribute[Any]
) -> ColumnElement[Any]:
    """The largest of the values: ``greatest(…)`` on PostgreSQL, the scalar ``max(…)`` on SQLite."""
    return func.greatest(*values) if _postgresql(bind) else func.max(*values)


def epoch_seconds(
    bind: Bind, timestamp: ColumnElement[Any] | QueryableAttribute[Any]
) -> ColumnElement[int]:
    """Whole seconds since the Unix epoch (rounded down) of a timestamp column."""
    if _postgresql(bind):
        return cast(func.floor(func.extract("epoch", timestamp)), BigInteger)
    # SQLite keeps naive UTC text (see stored_datetime), which strftime('%s') reads as UTC.
    return cast(func.strftime("%s", timestamp), Integer)


# 1970-01-01T00:00:00Z as a Julian day number (SQLite's julianday('1970-01-01')).
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def now_epoch_seconds(bind: Bind) -> ColumnElement[float]:
    """Seconds since the Unix epoch by the database's clock, read once per statement."""
    if _postgresql(bind):
        return cast(func.extract("epoch", func.statement_timestamp()), Double())
    # SQLite's 'now' has millisecond resolution and is the same throughout one statement.
    return (func.julianday("now") - _UNIX_EPOCH_JULIAN_DAY) * 86400.0


# --- Storage -------------------------------------------------------------------------------


def stored_datetime(dialect: Dialect, value: datetime) -> datetime:
    """An aware UTC datetime as the column stores it: naive UTC text on SQLite, which sorts
    correctly and has no time zone type; PostgreSQL's ``timestamptz`` takes it as it is."""
    return value if _postgresql(dialect) else value.replace(tzinfo=None)


# --- Triggers ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def row_trigger_dropped(session: AsyncSession, trigger: str) -> AsyncIterator[bool]:
    """SQLite: ``trigger`` is gone inside the block and back after it; yields True.

    Dropped, then created again from its own stored definition, in the caller's transaction:
    SQLite changes its schema transactionally and lets one transaction write at a time, so no
    other writer ever runs without the trigger, and a rollback brings it back. It comes back
    after a failed block too, for a caller that goes on with the transaction. For a bulk
    statement that does the trigger's work once instead of once per row.
    PostgreSQL: nothing is dropped (its counting triggers run once per statement); yields False.
    """
    if _postgresql(session):
        yield False
        return
    definition = await session.scalar(
        text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :name"),
        {"name": trigger},
    )
    if definition is None:
        raise RuntimeError(f"the trigger {trigger} is missing")
    await session.execute(text(f"DROP TRIGGER {trigger}"))
    try:
        yield True
    finally:
        await session.execute(text(definition))


async def fold_counter(connection: AsyncConnection, table: str, key: str, count: str) -> int:
    """Sum each key's rows of a counter table into one row and drop keys summing to zero.

    PostgreSQL: one statement (a DELETE … RETURNING inside the INSERT), exact under concurrency:
    it takes only rows its snapshot saw, a concurrent fold skips rows this one deleted, and
    readers see either the rows or their sum, never both. SQLite cannot put a DELETE in a
    WITH, and its counting triggers keep one row per key, so only the zero rows go. How many
    rows went.
    """
    if _postgresql(connection):
        statement = f"""
            WITH crowded AS (
                SELECT {key} FROM {table} GROUP BY {key}
                HAVING count(*) > 1 OR sum({count}) = 0
            ), folded AS (
                DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM crowded)
                RETURNING {key}, {count}
            )
            INSERT INTO {table} ({key}, {count})
            SELECT {key}, sum({count}) FROM folded GROUP BY {key} HAVING sum({count}) <> 0
        """
    else:
        statement = f"DELETE FROM {table} WHERE {count} = 0"
    result = await connection.execute(text(statement))
    return int(result.rowcount)


# --- Wake-ups ------------------------------------------------------------------------------


def listens_across_processes(bind: Bind) -> bool:
    """Whether other processes can be woken through the database (PostgreSQL's LISTEN/NOTIFY)."""
    return _postgresql(bind)


async def notify_other_processes(session: AsyncSession, channel: str) -> None:
    """Wake the database's listeners on ``channel`` once this transaction commits.

    PostgreSQL: ``NOTIFY`` is transactional, listeners hear it only after COMMIT. SQLite has no
    such signal: other processes find the change when they next poll.
    """
    if listens_across_processes(session):
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})
