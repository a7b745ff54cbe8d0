"""All SQL of the delivery engine over reports: claim, hand over, settle, put off, reclaim.

Every statement is set-based: a batch of reports costs one statement, never one per message.
Statements that change a report the worker holds name, in their WHERE, the state the worker
expects (``pending`` or ``sending``, its own lease), so a report that was cancelled, expired or
reclaimed meanwhile is left alone instead of being overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    bindparam,
    column,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from sms_sender.db import UTCDateTime
from sms_sender.dispatch.window import SendWindow
from sms_sender.mailings.models import Mailing, MailingStatus
from sms_sender.reports.models import Report, ReportStatus

reports: Table = Report.__table__  # type: ignore[assignment]
mailings: Table = Mailing.__table__  # type: ignore[assignment]

# Errors that say "the database (or the network to it) is unavailable right now".
UNAVAILABLE = (DBAPIError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class ClaimedReport:
    """A due report this worker holds a lease on; still ``pending`` until handed over."""

    id: int
    mailing_id: int
    client_id: int | None
    phone: str
    text: str
    timezone: str
    attempts: int


@dataclass(frozen=True, slots=True)
class MailingTerms:
    """What a worker must respect when sending a mailing's reports."""

    end_at: datetime
    window: SendWindow | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one send ended, as it is written to its report."""

    report_id: int
    mailing_id: int
    client_id: int | None
    status: ReportStatus
    error: str | None = None
    provider_message_id: str | None = None
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None


async def claim(
    connection: AsyncConnection, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedReport]:
    """Lease up to ``limit`` due reports of running mailings, oldest due first.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets concurrent workers take disjoint batches
    without waiting on each other. SQLite: transactions start IMMEDIATE (one writer at a time),
    so the same statement is just as exclusive without it.
    """
    due = (
        select(reports.c.id)
        .join(mailings, mailings.c.id == reports.c.mailing_id)
        .where(
            reports.c.status == ReportStatus.PENDING,
            reports.c.next_attempt_at <= now,
            or_(reports.c.lease_expires_at.is_(None), reports.c.lease_expires_at < now),
            mailings.c.status == MailingStatus.RUNNING,
            mailings.c.end_at > now,
        )
        .order_by(reports.c.next_attempt_at)
        .limit(limit)
    )
    if _dialect(connection) == "postgresql":
        due = due.with_for_update(of=reports, skip_locked=True)
        # Read the due queue in order through ix_reports_due and stop after ``limit``. Right
        # after a mailing of a million reports is made, before autovacuum has analysed them,
        # the planner would otherwise fetch and sort every pending report of the mailing.
        await connection.execute(text("SET LOCAL enable_sort = off"))
    due_ids = due.cte("due")
    rows = await connection.execute(
        update(reports)
        .where(reports.c.id.in_(select(due_ids.c.id)))
        .values(lease_owner=owner, lease_expires_at=lease_until)
        .returning(
            reports.c.id,
            reports.c.mailing_id,
            reports.c.client_id,
            reports.c.phone,
            reports.c.text,
            reports.c.timezone,
            reports.c.attempts,
        )
    )
    return [ClaimedReport(*row) for row in rows]


async def mailing_terms(
    connection: AsyncConnection, mailing_ids: Sequence[int]
) -> dict[int, MailingTerms]:
    """The end and send window of each mailing, read fresh (both may be edited while running)."""
    rows = await connection.execute(
        select(
            mailings.c.id,
            mailings.c.end_at,
            mailings.c.send_window_start,
            mailings.c.send_window_end,
        ).where(mailings.c.id.in_(list(mailing_ids)))
    )
    return {
        mailing_id: MailingTerms(end_at, SendWindow.of(window_start, window_end))
        for mailing_id, end_at, window_start, window_end in rows
    }


async def hand_over(
    connection: AsyncConnection,
    report_ids: Sequence[int],
    *,
    owner: str,
    provider: str,
    now: datetime,
    lease_until: datetime,
) -> set[int]:
    """Mark the reports ``sending`` right before their provider calls; returns the ids marked.

    Only reports still ``pending`` under this worker's lease and whose mailing is still running
    and not past its end are marked: this is where a pause or cancel made since the claim takes
    effect. The caller commits before calling the provider, so after a crash a ``sending``
    report means "the provider may have it" and a ``pending`` one "it certainly does not".
    """
    marked = await connection.scalars(
        update(reports)
        .where(
            reports.c.id.in_(list(report_ids)),
            reports.c.status == ReportStatus.PENDING,
            reports.c.lease_owner == owner,
            reports.c.mailing_id.in_(
                select(mailings.c.id).where(
                    mailings.c.status == MailingStatus.RUNNING, mailings.c.end_at > now
                )
            ),
        )
        .values(
            status=ReportStatus.SENDING,
            attempts=reports.c.attempts + 1,
            provider=provider,
            lease_expires_at=lease_until,
            updated_at=now,
        )
        .returning(reports.c.id)
    )
    return set(marked)


async def release(connection: AsyncConnection, report_ids: Sequence[int], *, owner: str) -> int:
    """Give back leases on reports never handed over, so any worker may take them at once."""
    if not report_ids:
        return 0
    result = await connection.execute(
        update(reports)
        .where(
            reports.c.id.in_(list(report_ids)),
            reports.c.status == ReportStatus.PENDING,
            reports.c.lease_owner == owner,
        )
        .values(lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount)


async def renew(
    connection: AsyncConnection, report_ids: Sequence[int], *, owner: str, lease_until: datetime
) -> int:
    """Extend this worker's leases on reports it still holds (waiting or in flight)."""
    if not report_ids:
        return 0
    result = await connection.execute(
        update(reports)
        .where(
            reports.c.id.in_(list(report_ids)),
            reports.c.status.in_((ReportStatus.PENDING, ReportStatus.SENDING)),
            reports.c.lease_owner == owner,
        )
        .values(lease_expires_at=lease_until)
    )
    return int(result.rowcount)


async def put_off(
    connection: AsyncConnection, until: Mapping[int, datetime], *, owner: str, now: datetime
) -> int:
    """Release held reports with a later ``next_attempt_at`` each (their send window opens)."""
    return await _update_each(
        connection,
        {"id": BigInteger(), "next_attempt_at": UTCDateTime()},
        list(until.items()),
        lambda row: {
            "next_attempt_at": row["next_attempt_at"],
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        },
        guard=[reports.c.status == ReportStatus.PENDING, reports.c.lease_owner == owner],
    )


async def settle(
    connection: AsyncConnection, settlements: Sequence[Settlement], *, owner: str, now: datetime
) -> int:
    """Write the outcome of sends, leaving alone reports no longer ``sending`` under our lease."""
    return await _update_each(
        connection,
        {
            "id": BigInteger(),
            "status": String(),
            "error": String(),
            "provider_message_id": String(),
            "sent_at": UTCDateTime(),
            "next_attempt_at": UTCDateTime(),
        },
        [
            (
                settled.report_id,
                settled.status.value,
                settled.error,
                settled.provider_message_id,
                settled.sent_at,
                settled.next_attempt_at,
            )
            for settled in settlements
        ],
        lambda row: {
            "status": row["status"],
            "error": row["error"],
            "provider_message_id": row["provider_message_id"],
            "sent_at": func.coalesce(row["sent_at"], reports.c.sent_at),
            "next_attempt_at": func.coalesce(row["next_attempt_at"], reports.c.next_attempt_at),
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        },
        guard=[_status_is(ReportStatus.SENDING), reports.c.lease_owner == owner],
    )


async def finish_completed(
    connection: AsyncConnection, now: datetime, mailing_ids: Sequence[int] | None = None
) -> list[int]:
    """Finish running mailings with nothing left to send (of ``mailing_ids``, or any)."""
    unsent = (
        select(reports.c.id)
        .where(
            reports.c.mailing_id == mailings.c.id,
            reports.c.status.in_((ReportStatus.PENDING, ReportStatus.SENDING)),
        )
        .exists()
    )
    statement = update(mailings).where(mailings.c.status == MailingStatus.RUNNING, ~unsent)
    if mailing_ids is not None:
        statement = statement.where(mailings.c.id.in_(list(mailing_ids)))
    finished = await connection.scalars(
        statement.values(status=MailingStatus.FINISHED, finished_at=now, updated_at=now).returning(
            mailings.c.id
        )
    )
    return list(finished)


@dataclass(frozen=True, slots=True)
class Reclaimed:
    report_id: int
    mailing_id: int
    client_id: int | None
    status: str


async def reclaim(
    connection: AsyncConnection, *, owner: str, now: datetime, resendable_provider: str | None
) -> list[Reclaimed]:
    """Settle ``sending`` reports whose worker died (lease expired): their outcome is unknown.

    They become ``interrupted`` and are never sent again, except those last handed to
    ``resendable_provider`` (an idempotent provider: a repeat is delivered once), which go back
    to ``pending``. Reports merely claimed (still ``pending``) need nothing: an expired lease
    makes them claimable again. This worker's own leases are alive by definition.
    """
    abandoned = [
        reports.c.status == ReportStatus.SENDING,
        reports.c.lease_expires_at < now,
        reports.c.lease_owner != owner,
    ]
    returning = (reports.c.id, reports.c.mailing_id, reports.c.client_id, reports.c.status)
    cleared = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    reclaimed: list[Reclaimed] = []
    if resendable_provider is not None:
        rows = await connection.execute(
            update(reports)
            .where(*abandoned, reports.c.provider == resendable_provider)
            .values(status=ReportStatus.PENDING, next_attempt_at=now, **cleared)
            .returning(*returning)
        )
        reclaimed += [Reclaimed(*row) for row in rows]
    rows = await connection.execute(
        update(reports)
        .where(*abandoned)
        .values(
            status=ReportStatus.INTERRUPTED,
            error="outcome unknown: the worker sending it stopped mid-send; not sent again",
            **cleared,
        )
        .returning(*returning)
    )
    return reclaimed + [Reclaimed(*row) for row in rows]


async def next_due_at(connection: AsyncConnection, now: datetime) -> datetime | None:
    """The earliest future ``next_attempt_at`` of a pending report (a retry or a window)."""
    due_at: datetime | None = await connection.scalar(
        select(func.min(reports.c.next_attempt_at)).where(
            reports.c.status == ReportStatus.PENDING, reports.c.next_attempt_at > now
        )
    )
    return due_at


async def count_due(connection: AsyncConnection, now: datetime) -> int:
    """Reports of running mailings due now: the queue depth."""
    count = await connection.scalar(
        select(func.count())
        .select_from(reports.join(mailings, mailings.c.id == reports.c.mailing_id))
        .where(
            reports.c.status == ReportStatus.PENDING,
            reports.c.next_attempt_at <= now,
            mailings.c.status == MailingStatus.RUNNING,
        )
    )
    return int(count or 0)


async def mailings_to_start(connection: AsyncConnection, now: datetime) -> list[int]:
    """Scheduled mailings whose start_at has come (even if their end passed while we were down)."""
    query = select(mailings.c.id).where(
        mailings.c.status == MailingStatus.SCHEDULED, mailings.c.start_at <= now
    )
    return list(await connection.scalars(query.order_by(mailings.c.start_at)))


async def mailings_to_end(connection: AsyncConnection, now: datetime) -> list[int]:
    """Running or paused mailings whose end_at has come."""
    query = select(mailings.c.id).where(
        mailings.c.status.in_((MailingStatus.RUNNING, MailingStatus.PAUSED)),
        mailings.c.end_at <= now,
    )
    return list(await connection.scalars(query.order_by(mailings.c.end_at)))


async def next_mailing_event_at(connection: AsyncConnection) -> datetime | None:
    """The next start_at of a scheduled mailing or end_at of an active one, in one query."""
    next_start = (
        select(func.min(mailings.c.start_at))
        .where(mailings.c.status == MailingStatus.SCHEDULED)
        .scalar_subquery()
    )
    next_end = (
        select(func.min(mailings.c.end_at))
        .where(mailings.c.status.in_((MailingStatus.RUNNING, MailingStatus.PAUSED)))
        .scalar_subquery()
    )
    starts, ends = (await connection.execute(select(next_start, next_end))).one()
    return min((when for when in (starts, ends) if when is not None), default=None)


async def count_running(connection: AsyncConnection) -> int:
    query = select(func.count()).where(mailings.c.status == MailingStatus.RUNNING)
    return int(await connection.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class AwaitingDelivery:
    """A report accepted by a provider whose delivery to the phone is not yet known."""

    id: int
    mailing_id: int
    client_id: int | None
    provider_message_id: str
    sent_at: datetime


async def awaiting_delivery(
    connection: AsyncConnection,
    *,
    provider: str,
    sent_since: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[AwaitingDelivery]:
    """A page of ``sent`` reports of ``provider``, in (sent_at, id) order after ``after``."""
    query = select(
        reports.c.id,
        reports.c.mailing_id,
        reports.c.client_id,
        reports.c.provider_message_id,
        reports.c.sent_at,
    ).where(
        reports.c.status == ReportStatus.SENT,
        reports.c.provider == provider,
        reports.c.sent_at >= sent_since,
        reports.c.provider_message_id.is_not(None),
    )
    if after is not None:
        query = query.where(tuple_(reports.c.sent_at, reports.c.id) > tuple_(*after))
    rows = await connection.execute(query.order_by(reports.c.sent_at, reports.c.id).limit(limit))
    return [AwaitingDelivery(*row) for row in rows]


async def record_delivery(
    connection: AsyncConnection, statuses: Mapping[int, ReportStatus], *, now: datetime
) -> int:
    """Move ``sent`` reports to ``delivered`` / ``undelivered`` as their provider reported."""
    return await _update_each(
        connection,
        {"id": BigInteger(), "status": String()},
        [(report_id, status.value) for report_id, status in statuses.items()],
        lambda row: {"status": row["status"], "updated_at": now},
        guard=[reports.c.status == ReportStatus.SENT],
    )


RowValues = Callable[[Mapping[str, ColumnElement[Any]]], dict[str, Any]]


async def _update_each(
    connection: AsyncConnection,
    columns: Mapping[str, TypeEngine[Any]],
    rows: Sequence[tuple[Any, ...]],
    assign: RowValues,
    *,
    guard: Sequence[ColumnElement[bool]],
) -> int:
    """Give each report (``rows[i][0]`` is its id) its own values, in one round trip.

    PostgreSQL: ``UPDATE … FROM unnest(:ids, :statuses, …)``, one array parameter per column,
    so the statement is the same whatever the batch size (compiled once, cached). SQLite: one
    prepared ``UPDATE`` that the driver runs for every row (``executemany``), which in SQLite's
    own process is as cheap as a join.
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
        result = await connection.execute(
            statement.values(**assign(fields)), dict(zip(names, by_column, strict=True))
        )
        return int(result.rowcount)
    params = {name: bindparam(f"given_{name}", type_=type_) for name, type_ in columns.items()}
    statement = update(reports).where(reports.c.id == params["id"], *guard).values(**assign(params))
    result = await connection.execute(
        statement, [dict(zip(names, row, strict=True)) for row in rows]
    )
    return int(result.rowcount)


def _status_is(status: ReportStatus) -> ColumnElement[bool]:
    """``status = :status``, in a form no partial index on status can serve.

    Rows found by id must be joined through the primary key. Left to itself, PostgreSQL may
    read a partial index such as ix_reports_lease (``WHERE status = 'sending'``) instead, with
    a bitmap scan that also visits every entry left by earlier updates until the next vacuum:
    under a steady stream of sends that grows without bound and slows every write.
    """
    return func.coalesce(reports.c.status, "") == status.value


def _dialect(connection: AsyncConnection) -> str:
    return connection.dialect.name
