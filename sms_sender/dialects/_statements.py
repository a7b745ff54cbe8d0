"""Statements with the same meaning in each database's own syntax."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

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
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql import Select
from sqlalchemy.types import TypeEngine

from sms_sender.dialects._which import Bind, dialect_of, on_postgresql

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
    return _insert_ignoring_conflicts(on_postgresql(bind), target, conflict_on, returning)


@cache
def _insert_ignoring_conflicts(
    for_postgresql: bool,
    target: Any,
    conflict_on: tuple[str, ...],
    returning: tuple[ColumnElement[Any], ...],
) -> Insert:
    module = postgresql if for_postgresql else sqlite
    statement = module.insert(target).on_conflict_do_nothing(index_elements=list(conflict_on))
    return statement.returning(*returning) if returning else statement  # type: ignore[no-any-return]


def chains_inserts(bind: Bind) -> bool:
    """Whether one statement may insert rows from another INSERT's RETURNING.

    PostgreSQL: ``WITH new AS (INSERT … RETURNING …) INSERT … SELECT … FROM new`` (a
    data-modifying WITH), one round trip for both. SQLite allows no INSERT inside WITH: two
    statements.
    """
    return on_postgresql(bind)


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
    module = postgresql if on_postgresql(bind) else sqlite
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
    parameter per column, or, when every column is text, ``jsonb_array_elements(:rows)``, one
    JSON array of arrays. SQLite: ``json_each(:rows)``, one JSON array of arrays read with
    ``json_extract``; each value is first converted as its column type would bind it, so a
    datetime is stored exactly as everywhere else.
    """
    dialect = dialect_of(bind)
    if dialect.name == "postgresql" and all(
        isinstance(type_, String) for type_ in columns.values()
    ):
        # Text only: one JSON document, as on SQLite. asyncpg encodes an array element by
        # element (type checks on each), four times the client CPU of json.dumps per row.
        # jsonb, parsed once: on json each ->> parsed its row's text again (a tenth of the
        # server's CPU in an import of four columns).
        as_json = cast(bindparam(None, json.dumps(rows), type_=String()), postgresql.JSONB())
        elements = func.jsonb_array_elements(as_json).table_valued("value")
        return {
            name: elements.c.value.op("->>", return_type=type_)(literal_column(str(index)))
            for index, (name, type_) in enumerate(columns.items())
        }
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
    if any(converters):
        rows = [
            [
                value if convert is None else convert(value)
                for value, convert in zip(row, converters, strict=True)
            ]
            for row in rows
        ]
    # Rows of text need no conversion: json.dumps writes the tuples as they are.
    document = json.dumps(rows)
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
    if on_postgresql(bind):
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
    if not on_postgresql(bind):
        return query
    return query.with_for_update(of=of, skip_locked=True)


def not_locked_by_others(
    bind: Bind, table: Table, condition: ColumnElement[bool]
) -> ColumnElement[bool]:
    """The rows of ``table`` matching ``condition`` that no other transaction holds (PostgreSQL).

    For the engine's UPDATEs of reports it holds: a row another transaction has locked is being
    closed (an opt-out, a cancel, an end, a client's delete) or taken over, so the engine leaves
    it rather than wait. Waiting could deadlock: an UPDATE locks its rows one by one in whatever
    order its plan reads them, so an opt-out closing a client's reports and a hand-over marking
    some of them could each hold a row the other waits for, and PostgreSQL would cancel one
    (seen in CI: the opt-out, which the API would have answered with a 500). As the engine
    never waits for a report's row, no cycle through it can form, whatever order the closing
    statement takes; the closing statement waits for the engine's short transaction instead.

    ``id IN (SELECT id … FOR NO KEY UPDATE SKIP LOCKED)``: the lock an UPDATE takes, taken first.
    A row changed and committed meanwhile is locked in its newest version and checked against
    ``condition`` again. SQLite: ``condition``; one transaction writes at a time.
    """
    if not on_postgresql(bind):
        return condition
    free = (
        select(table.c.id)
        .where(condition)
        .with_for_update(of=table, key_share=True, skip_locked=True)
        .cte(f"{table.name}_free")
    )
    return table.c.id.in_(select(free.c.id))


async def planner_setting(connection: AsyncConnection, name: str, value: str) -> None:
    """Set a PostgreSQL planner setting until this transaction ends; SQLite has none: nothing."""
    if on_postgresql(connection):
        await connection.execute(text(f"SET LOCAL {name} = {value}"))


def greatest(
    bind: Bind, *values: ColumnElement[Any] | QueryableAttribute[Any]
) -> ColumnElement[Any]:
    """The largest of the values: ``greatest(…)`` on PostgreSQL, the scalar ``max(…)`` on SQLite."""
    return func.greatest(*values) if on_postgresql(bind) else func.max(*values)


def epoch_seconds(
    bind: Bind, timestamp: ColumnElement[Any] | QueryableAttribute[Any]
) -> ColumnElement[int]:
    """Whole seconds since the Unix epoch (rounded down) of a timestamp column."""
    if on_postgresql(bind):
        return cast(func.floor(func.extract("epoch", timestamp)), BigInteger)
    # SQLite keeps naive UTC text (see stored_datetime), which strftime('%s') reads as UTC.
    return cast(func.strftime("%s", timestamp), Integer)


# 1970-01-01T00:00:00Z as a Julian day number (SQLite's julianday('1970-01-01')).
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def now_epoch_seconds(bind: Bind) -> ColumnElement[float]:
    """Seconds since the Unix epoch by the database's clock, read once per statement."""
    if on_postgresql(bind):
        return cast(func.extract("epoch", func.statement_timestamp()), Double())
    # SQLite's 'now' has millisecond resolution and is the same throughout one statement.
    return (func.julianday("now") - _UNIX_EPOCH_JULIAN_DAY) * 86400.0


# --- Storage -------------------------------------------------------------------------------


def stored_datetime(dialect: Dialect, value: datetime) -> datetime:
    """An aware UTC datetime as the column stores it: naive UTC text on SQLite, which sorts
    correctly and has no time zone type; PostgreSQL's ``timestamptz`` takes it as it is."""
    return value if on_postgresql(dialect) else value.replace(tzinfo=None)


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
    if on_postgresql(session):
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
    if on_postgresql(connection):
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
