"""All SQL of the daily report and the alerts: claims, leases, and the figures they report.

Claims are INSERT … ON CONFLICT DO NOTHING on the notifications' unique key, so two workers
that decide at once that a day's report is due make one row. Sending is leased like the
engine's reports: a compare-and-set UPDATE names the state it expects and the owner it sets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender import dialects
from sms_sender.mailings.models import Mailing, MailingStatus
from sms_sender.notifications.models import Notification, NotificationKind, NotificationStatus
from sms_sender.notifications.schemas import FAILED_STATUSES, UNKNOWN_STATUS, MailingFigures
from sms_sender.reports.models import MailingReportCount, Report

_table = Notification.__table__


async def add_claims(
    connection: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> list[tuple[str, str, int | None]]:
    """Insert the rows whose (kind, channel, claim) is free; (kind, channel, mailing) of each."""
    if not rows:
        return []
    returning = (_table.c.kind, _table.c.channel, _table.c.mailing_id)
    statement = dialects.insert_ignoring_conflicts(
        connection, _table, ("kind", "channel", "claim"), returning
    ).values(list(rows))
    return [(row.kind, row.channel, row.mailing_id) for row in await connection.execute(statement)]


async def last_report_day(connection: AsyncConnection) -> date | None:
    """The latest day a daily report was claimed for, if any ever was."""
    query = select(func.max(Notification.day)).where(
        Notification.kind == NotificationKind.DAILY_REPORT
    )
    return await connection.scalar(query)


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending and due, or sending under a lease that ran out (its holder died or hung)."""
    return or_(
        and_(
            Notification.status == NotificationStatus.PENDING,
            Notification.next_attempt_at <= now,
        ),
        and_(
            Notification.status == NotificationStatus.SENDING,
            Notification.lease_expires_at <= now,
        ),
    )


async def due_ids(connection: AsyncConnection, now: datetime, limit: int) -> list[int]:
    query = (
        select(Notification.id)
        .where(_due(now))
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
    )
    return list(await connection.scalars(query))


async def lease(
    connection: AsyncConnection, notification_id: int, owner: str, now: datetime, until: datetime
) -> Notification | None:
    """Take the row for ``owner`` until ``until`` if it is still due; None if someone else did."""
    statement = (
        update(Notification)
        .where(Notification.id == notification_id, _due(now))
        .values(
            status=NotificationStatus.SENDING,
            lease_owner=owner,
            lease_expires_at=until,
            attempts=Notification.attempts + 1,
            updated_at=now,
        )
        .returning(*_table.c)
    )
    row = (await connection.execute(statement)).one_or_none()
    return Notification(**row._mapping) if row is not None else None


async def settle(
    connection: AsyncConnection,
    notification_id: int,
    owner: str,
    now: datetime,
    *,
    status: NotificationStatus,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome of ``owner``'s attempt; False if its lease was taken over meanwhile."""
    values: dict[str, Any] = {
        "status": status,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
        "error": error[:1000] if error else None,
    }
    if status == NotificationStatus.SENT:
        values["sent_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    statement = (
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == NotificationStatus.SENDING,
            Notification.lease_owner == owner,
        )
        .values(**values)
    )
    result = await connection.execute(statement)
    return int(result.rowcount) == 1


async def mailings_active_between(
    connection: AsyncConnection, start: datetime, end: datetime
) -> list[MailingFigures]:
    """Every mailing that was running at some moment of [start, end), with its counts."""
    active = and_(
        Mailing.started_at < end,
        or_(Mailing.finished_at.is_(None), Mailing.finished_at >= start),
    )
    return await _figures(connection, active)


async def figures_of(
    connection: AsyncConnection, mailing_ids: Sequence[int]
) -> list[MailingFigures]:
    return await _figures(connection, Mailing.id.in_(list(mailing_ids))) if mailing_ids else []


async def _figures(connection: AsyncConnection, which: ColumnElement[bool]) -> list[MailingFigures]:
    mailings = (
        await connection.execute(
            select(Mailing.id, Mailing.status, Mailing.start_at, Mailing.end_at)
            .where(which)
            .order_by(Mailing.id)
        )
    ).all()
    # The counters the triggers keep exact (reports per mailing and status), not a scan of
    # the mailings' reports: a key's rows are summed, and a status counted to zero is left out.
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    reports = func.sum(MailingReportCount.reports)
    counted = (
        select(MailingReportCount.mailing_id, MailingReportCount.status, reports)
        .where(MailingReportCount.mailing_id.in_(select(Mailing.id).where(which)))
        .group_by(MailingReportCount.mailing_id, MailingReportCount.status)
        .having(reports > 0)
    )
    for mailing_id, status, count in await connection.execute(counted):
        counts[mailing_id][status] = int(count)
    return [
        MailingFigures(row.id, row.status, row.start_at, row.end_at, counts[row.id])
        for row in mailings
    ]


async def top_failure_reasons(
    connection: AsyncConnection, mailing_ids: Sequence[int], limit: int
) -> list[tuple[str, int]]:
    """The commonest errors of the mailings' failed reports, most frequent first."""
    if not mailing_ids:
        return []
    count = func.count().label("count")
    query = (
        select(Report.error, count)
        .where(
            Report.mailing_id.in_(list(mailing_ids)),
            Report.status.in_(FAILED_STATUSES),
            Report.error.is_not(None),
        )
        .group_by(Report.error)
        .order_by(count.desc(), Report.error)
        .limit(limit)
    )
    return [(row.error or "", row[1]) for row in await connection.execute(query)]


async def finished_since(connection: AsyncConnection, since: datetime) -> list[int]:
    query = select(Mailing.id).where(
        Mailing.status == MailingStatus.FINISHED, Mailing.finished_at >= since
    )
    return list(await connection.scalars(query))


async def paused_with_reason(connection: AsyncConnection) -> dict[int, str]:
    """Paused mailings the engine paused itself (it says why: a person's pause has no reason)."""
    query = select(Mailing.id, Mailing.paused_reason).where(
        Mailing.status == MailingStatus.PAUSED, Mailing.paused_reason.is_not(None)
    )
    return {row.id: row.paused_reason or "" for row in await connection.execute(query)}


async def active_mailing_ids(connection: AsyncConnection) -> list[int]:
    query = select(Mailing.id).where(
        Mailing.status.in_([MailingStatus.RUNNING, MailingStatus.PAUSED])
    )
    return list(await connection.scalars(query))


async def unknown_since(connection: AsyncConnection, since: datetime) -> dict[int, int]:
    """How many reports of each mailing became ``unknown`` at or after ``since``."""
    query = (
        select(Report.mailing_id, func.count())
        .where(Report.status == UNKNOWN_STATUS, Report.updated_at >= since)
        .group_by(Report.mailing_id)
    )
    return {row.mailing_id: row[1] for row in await connection.execute(query)}


async def alerted_since(connection: AsyncConnection, since: datetime) -> set[tuple[str, int]]:
    """(kind, mailing_id) of every alert raised at or after ``since``."""
    query = (
        select(Notification.kind, Notification.mailing_id)
        .where(Notification.created_at >= since, Notification.mailing_id.is_not(None))
        .distinct()
    )
    return {(row.kind, row.mailing_id or 0) for row in await connection.execute(query)}
