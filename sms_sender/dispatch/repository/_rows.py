"""Shared pieces of the engine's SQL: the tables, a report's mailing, one update for many rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from sms_sender import dialects
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


async def update_each(
    connection: AsyncConnection,
    columns: Mapping[str, TypeEngine[Any]],
    rows: Sequence[tuple[Any, ...]],
    assign: dialects.RowValues,
    *,
    guard: Sequence[ColumnElement[bool]],
) -> int:
    """Give each report (``rows[i][0]`` is its id) its own values, in one round trip.

    ``UPDATE reports … FROM`` the given rows (``dialects.update_from_rows``): the statement is
    the same whatever the batch size, and ``guard`` is what each report must still match.
    """
    return await dialects.update_from_rows(connection, reports, columns, rows, assign, guard=guard)


def status_is(status: ReportStatus) -> ColumnElement[bool]:
    """``status = :status``, in a form no partial index on status can serve.

    Rows found by id must be joined through the primary key. Left to itself, PostgreSQL may
    read a partial index such as ix_reports_lease (``WHERE status = 'sending'``) instead, with
    a bitmap scan that also visits every entry left by earlier updates until the next vacuum:
    under a steady stream of sends that grows without bound and slows every write.
    """
    return func.coalesce(reports.c.status, "") == status.value
