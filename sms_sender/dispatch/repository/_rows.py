"""Shared pieces of the engine's SQL: the tables, a report's mailing, one update for many rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    any_,
    bindparam,
    column,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from sms_sender.clients.models import Client
from sms_sender.mailings.models import Mailing
from sms_sender.reports.models import Report, ReportStatus

reports: Table = Report.__table__  # type: ignore[assignment]
mailings: Table = Mailing.__table__  # type: ignore[assignment]
clients: Table = Client.__table__  # type: ignore[assignment]


def client_opted_out() -> ColumnElement[bool]:
    """The report's client has opted out since its report was made (sms_sender.consent)."""
    return (
        select(clients.c.id)
        .where(clients.c.id == reports.c.client_id, clients.c.opted_out_at.is_not(None))
        .exists()
    )


def of_mailing(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A column of the report's mailing, read in the same statement as the report's update."""
    return select(column).where(mailings.c.id == reports.c.mailing_id).scalar_subquery()


def among(
    connection: AsyncConnection, id_column: ColumnElement[int], ids: Collection[int]
) -> ColumnElement[bool]:
    """``id_column IN ids`` as one parameter, so the statement is the same for any count.

    An ``IN (…)`` list is a different statement for every length: compiled again by
    SQLAlchemy, and on PostgreSQL prepared again (a round trip) once the driver's statement
    cache has rolled over. PostgreSQL takes an array (``= ANY(:ids)``), SQLite a JSON array
    (``IN (SELECT value FROM json_each(:ids))``).
    """
    if connection.dialect.name == "postgresql":
        return id_column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(BigInteger())))
    given = func.json_each(bindparam(None, json.dumps(list(ids)), type_=String())).table_valued(
        "value"
    )
    return id_column.in_(select(given.c.value))


RowValues = Callable[[Mapping[str, ColumnElement[Any]]], dict[str, Any]]


async def update_each(
    connection: AsyncConnection,
    columns: Mapping[str, TypeEngine[Any]],
    rows: Sequence[tuple[Any, ...]],
    assign: RowValues,
    *,
    guard: Sequence[ColumnElement[bool]],
) -> int:
    """Give each report (``rows[i][0]`` is its id) its own values, in one round trip.

    PostgreSQL: ``UPDATE … FROM unnest(:ids, :statuses, …)``, one array parameter per column,
    so the statement is the same whatever the batch size (compiled once, cached). SQLite: the
    same from one JSON parameter (see :func:`_update_each_from_json`).
    """
    if not rows:
        return 0
    names = [f"given_{name}" for name in columns]
    if connection.dialect.name == "postgresql":
        arrays = [
            bindparam(name, type_=postgresql.ARRAY(type_))
            for name, type_ in zip(names, columns.values(), strict=True)
        ]
        given = (
            func.unnest(*arrays)
            .table_valued(*(column(name, type_) for name, type_ in columns.items()))
            .render_derived(name="given")
        )
        fields: Mapping[str, ColumnElement[Any]] = {name: given.c[name] for name in columns}
        statement = update(reports).where(fields["id"] == reports.c.id, *guard)
        by_column = [list(column_values) for column_values in zip(*rows, strict=True)]
        # The plan must start from the given rows and find each report by its primary key. A
        # custom plan (asyncpg's first five runs of a statement on each connection) trusts the
        # statistics of the guard's columns instead, which lag behind a running mailing: taken
        # when no report was `sending`, they promise one matching row, and the planner scans
        # the whole table and re-reads the given rows for every match, 0.6 s for 1,000 reports
        # of a 50,000-report mailing instead of 30 ms. The generic plan knows no array length
        # and always takes the primary-key path.
        await connection.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        result = await connection.execute(
            statement.values(**assign(fields)), dict(zip(names, by_column, strict=True))
        )
        return int(result.rowcount)
    return await _update_each_from_json(connection, columns, rows, assign, guard)


async def _update_each_from_json(
    connection: AsyncConnection,
    columns: Mapping[str, TypeEngine[Any]],
    rows: Sequence[tuple[Any, ...]],
    assign: RowValues,
    guard: Sequence[ColumnElement[bool]],
) -> int:
    """SQLite: ``UPDATE … FROM json_each(:rows)``, the rows as one JSON array of arrays.

    Each value is first converted as its column type would bind it (so a datetime is stored
    exactly as everywhere else); the statement then reads it with ``json_extract``. One
    parameter instead of an ``executemany`` spares SQLAlchemy's per-row parameter handling.
    """
    dialect = connection.dialect
    converters = [type_.dialect_impl(dialect).bind_processor(dialect) for type_ in columns.values()]
    encoded = json.dumps(
        [
            [
                value if convert is None else convert(value)
                for value, convert in zip(row, converters, strict=True)
            ]
            for row in rows
        ]
    )
    given = func.json_each(bindparam(None, encoded, type_=String())).table_valued("value")
    fields: Mapping[str, ColumnElement[Any]] = {
        name: func.json_extract(given.c.value, f"$[{index}]", type_=type_)
        for index, (name, type_) in enumerate(columns.items())
    }
    statement = update(reports).where(reports.c.id == fields["id"], *guard)
    result = await connection.execute(statement.values(**assign(fields)))
    return int(result.rowcount)


def status_is(status: ReportStatus) -> ColumnElement[bool]:
    """``status = :status``, in a form no partial index on status can serve.

    Rows found by id must be joined through the primary key. Left to itself, PostgreSQL may
    read a partial index such as ix_reports_lease (``WHERE status = 'sending'``) instead, with
    a bitmap scan that also visits every entry left by earlier updates until the next vacuum:
    under a steady stream of sends that grows without bound and slows every write.
    """
    return func.coalesce(reports.c.status, "") == status.value
