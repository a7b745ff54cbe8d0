"""A worker's statements over the reports it holds: claim, hand over, renew, release, put off.

How the sends end (settle, reclaim) is in :mod:`sms_sender.dispatch.repository._settle`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import BigInteger, ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender import dialects
from sms_sender.consent.rules import SkipReason
from sms_sender.db import UTCDateTime
from sms_sender.dialects import among
from sms_sender.dispatch.repository._rows import (
    client_opted_out,
    mailings,
    of_mailing,
    reports,
    update_each,
)
from sms_sender.dispatch.types import ClaimedReport, MailingTerms
from sms_sender.dispatch.window import DailyWindow
from sms_sender.mailings.models import MailingStatus
from sms_sender.reports.models import ReportStatus


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
            reports.c.client_id.is_not(None),  # a deleted client is not sent to
            mailings.c.status == MailingStatus.RUNNING,
            mailings.c.end_at > now,
        )
        .order_by(reports.c.next_attempt_at)
        .limit(limit)
    )
    due = dialects.skip_locked(due, connection, of=reports)
    # PostgreSQL: read the due queue in order through ix_reports_due and stop after ``limit``.
    # Right after a mailing of a million reports is made, before autovacuum has analysed them,
    # the planner would otherwise fetch and sort every pending report of the mailing.
    await dialects.planner_setting(connection, "enable_sort", "off")
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
        ).where(among(connection, mailings.c.id, mailing_ids))
    )
    return {
        mailing_id: MailingTerms(end_at, DailyWindow.of(window_start, window_end))
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
) -> dict[int, MailingTerms]:
    """Mark the reports ``sending`` right before their provider calls; the terms of each marked.

    Only reports still ``pending`` under this worker's lease, of a client not deleted and not
    opted out, and whose mailing is still running and not past its end are marked: this is
    where a pause, cancel, client deletion, opt-out or new end made since the claim takes
    effect. Each marked report comes back
    with its mailing's end and send window as they are now, for its call to respect (both may
    have been edited since the claim). The caller commits before calling the provider, so after
    a crash a ``sending`` report means "the provider may have it" and a ``pending`` one "it
    certainly does not".
    """
    rows = await connection.execute(
        update(reports)
        .where(
            _held(
                connection,
                report_ids,
                owner,
                reports.c.status == ReportStatus.PENDING,
                reports.c.client_id.is_not(None),
                ~client_opted_out(),
                reports.c.mailing_id.in_(
                    select(mailings.c.id).where(
                        mailings.c.status == MailingStatus.RUNNING, mailings.c.end_at > now
                    )
                ),
            )
        )
        .values(
            status=ReportStatus.SENDING,
            attempts=reports.c.attempts + 1,
            provider=provider,
            lease_expires_at=lease_until,
            updated_at=now,
        )
        .returning(
            reports.c.id,
            of_mailing(mailings.c.end_at).label("end_at"),
            of_mailing(mailings.c.send_window_start).label("send_window_start"),
            of_mailing(mailings.c.send_window_end).label("send_window_end"),
        )
    )
    return {
        report_id: MailingTerms(end_at, DailyWindow.of(window_start, window_end))
        for report_id, end_at, window_start, window_end in rows
    }


async def skip_opted_out(
    connection: AsyncConnection, report_ids: Sequence[int], *, owner: str, now: datetime
) -> int:
    """Skip held reports whose client opted out (normally the opt-out skipped them already)."""
    if not report_ids:
        return 0
    result = await connection.execute(
        update(reports)
        .where(
            _held(
                connection,
                report_ids,
                owner,
                reports.c.status == ReportStatus.PENDING,
                client_opted_out(),
            )
        )
        .values(
            status=ReportStatus.SKIPPED,
            error=SkipReason.OPTED_OUT.value,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)


async def release(connection: AsyncConnection, report_ids: Sequence[int], *, owner: str) -> int:
    """Give back leases on reports never handed over, so any worker may take them at once."""
    if not report_ids:
        return 0
    result = await connection.execute(
        update(reports)
        .where(_held(connection, report_ids, owner, reports.c.status == ReportStatus.PENDING))
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
            _held(
                connection,
                report_ids,
                owner,
                reports.c.status.in_((ReportStatus.PENDING, ReportStatus.SENDING)),
            )
        )
        .values(lease_expires_at=lease_until)
    )
    return int(result.rowcount)


def _held(
    connection: AsyncConnection,
    report_ids: Sequence[int],
    owner: str,
    *conditions: ColumnElement[bool],
) -> ColumnElement[bool]:
    """These reports, leased to ``owner`` and meeting ``conditions``, that nobody else has locked.

    A report another transaction has locked is being closed (an opt-out, a cancel, an end, a
    client's delete) or taken over; the worker leaves it rather than wait for its lock, so that
    no deadlock can pass through a worker (dialects.not_locked_by_others). Left alone, it stays
    leased to this worker: closed by the other transaction, or, if that one rolls back, claimed
    again once the lease runs out.
    """
    return dialects.not_locked_by_others(
        connection,
        reports,
        and_(
            among(connection, reports.c.id, report_ids), reports.c.lease_owner == owner, *conditions
        ),
    )


async def put_off(
    connection: AsyncConnection, until: Mapping[int, datetime], *, owner: str, now: datetime
) -> int:
    """Release held reports with a later ``next_attempt_at`` each (their send window opens)."""
    return await update_each(
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


async def next_due_at(connection: AsyncConnection, *, after: datetime) -> datetime | None:
    """The earliest ``next_attempt_at`` after ``after`` of a pending report (a retry, a window).

    ``after`` is the time of the worker's last claim, which saw everything due until then.
    """
    due_at: datetime | None = await connection.scalar(
        select(func.min(reports.c.next_attempt_at)).where(
            reports.c.status == ReportStatus.PENDING, reports.c.next_attempt_at > after
        )
    )
    return due_at
