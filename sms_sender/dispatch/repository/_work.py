"""A worker's statements over the reports it claims, hands over, settles or gives back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    String,
    case,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender.db import UTCDateTime
from sms_sender.dispatch.repository._rows import mailings, reports, status_is, update_each
from sms_sender.dispatch.window import SendWindow
from sms_sender.mailings.models import MailingStatus
from sms_sender.reports.models import ReportStatus


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
    # False when the provider was never called (shutdown before the call, a window that
    # closed): the attempt counted at hand-over is given back.
    attempted: bool = True


CLIENT_DELETED = "client deleted"
MAILING_CANCELLED = "mailing cancelled"
ENDED_BEFORE_SEND = "end_at reached before it could be sent"


def _of_mailing(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A column of the report's mailing, read in the same statement as the report's update."""
    return select(column).where(mailings.c.id == reports.c.mailing_id).scalar_subquery()


def _unless_closed(
    next_attempt_at: ColumnElement[Any], error: ColumnElement[Any]
) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Status and error of a report going back to ``pending``, unless it can never be sent.

    Cancel and end_at close only ``pending`` reports, and claims take only those of running
    mailings and live clients; a report that returns to ``pending`` after either would wait
    forever. So the return itself looks at the mailing and client as they are now:
    ``cancelled`` for a deleted client or a cancelled mailing, ``expired`` for a finished
    mailing or a next attempt at or after end_at.
    """
    mailing_status = _of_mailing(mailings.c.status)
    end_at = _of_mailing(mailings.c.end_at)
    client_deleted = reports.c.client_id.is_(None)
    cancelled = mailing_status == MailingStatus.CANCELLED.value
    ended = or_(mailing_status == MailingStatus.FINISHED.value, next_attempt_at >= end_at)
    status = case(
        (client_deleted, ReportStatus.CANCELLED.value),
        (cancelled, ReportStatus.CANCELLED.value),
        (ended, ReportStatus.EXPIRED.value),
        else_=ReportStatus.PENDING.value,
    )
    reason = case(
        (client_deleted, CLIENT_DELETED),
        (cancelled, MAILING_CANCELLED),
        (ended, ENDED_BEFORE_SEND),
        else_=error,
    )
    return status, reason


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
    if connection.dialect.name == "postgresql":
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
) -> dict[int, MailingTerms]:
    """Mark the reports ``sending`` right before their provider calls; the terms of each marked.

    Only reports still ``pending`` under this worker's lease, of a client not deleted, and whose
    mailing is still running and not past its end are marked: this is where a pause, cancel,
    client deletion or new end made since the claim takes effect. Each marked report comes back
    with its mailing's end and send window as they are now, for its call to respect (both may
    have been edited since the claim). The caller commits before calling the provider, so after
    a crash a ``sending`` report means "the provider may have it" and a ``pending`` one "it
    certainly does not".
    """
    rows = await connection.execute(
        update(reports)
        .where(
            reports.c.id.in_(list(report_ids)),
            reports.c.status == ReportStatus.PENDING,
            reports.c.lease_owner == owner,
            reports.c.client_id.is_not(None),
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
        .returning(
            reports.c.id,
            _of_mailing(mailings.c.end_at).label("end_at"),
            _of_mailing(mailings.c.send_window_start).label("send_window_start"),
            _of_mailing(mailings.c.send_window_end).label("send_window_end"),
        )
    )
    return {
        report_id: MailingTerms(end_at, SendWindow.of(window_start, window_end))
        for report_id, end_at, window_start, window_end in rows
    }


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


async def settle(
    connection: AsyncConnection, settlements: Sequence[Settlement], *, owner: str, now: datetime
) -> int:
    """Write the outcome of sends, leaving alone reports no longer ``sending`` under our lease."""
    return await update_each(
        connection,
        {
            "id": BigInteger(),
            "status": String(),
            "error": String(),
            "provider_message_id": String(),
            "sent_at": UTCDateTime(),
            "next_attempt_at": UTCDateTime(),
            "attempted": Boolean(),
        },
        [
            (
                settled.report_id,
                settled.status.value,
                settled.error,
                settled.provider_message_id,
                settled.sent_at,
                settled.next_attempt_at,
                settled.attempted,
            )
            for settled in settlements
        ],
        lambda row: _settled_values(row, now),
        guard=[status_is(ReportStatus.SENDING), reports.c.lease_owner == owner],
    )


def _settled_values(row: Mapping[str, ColumnElement[Any]], now: datetime) -> dict[str, Any]:
    """A settlement's columns; one that goes back to ``pending`` may close instead (see above)."""
    next_attempt_at = func.coalesce(row["next_attempt_at"], reports.c.next_attempt_at)
    status_if_pending, error_if_pending = _unless_closed(next_attempt_at, row["error"])
    back_to_pending = row["status"] == ReportStatus.PENDING.value
    return {
        "status": case((back_to_pending, status_if_pending), else_=row["status"]),
        "error": case((back_to_pending, error_if_pending), else_=row["error"]),
        "attempts": reports.c.attempts - case((row["attempted"], 0), else_=1),
        "provider_message_id": row["provider_message_id"],
        "sent_at": func.coalesce(row["sent_at"], reports.c.sent_at),
        "next_attempt_at": next_attempt_at,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
    }


@dataclass(frozen=True, slots=True)
class Reclaimed:
    report_id: int
    mailing_id: int
    client_id: int | None
    status: str


async def reclaim(
    connection: AsyncConnection,
    *,
    now: datetime,
    in_flight: Sequence[int],
    resendable_provider: str | None,
) -> list[Reclaimed]:
    """Settle ``sending`` reports whose lease expired: their outcome is unknown.

    A live worker renews the leases of its sends, so an expired one means its worker died, or
    lost track of it (a commit whose answer never arrived). They become ``interrupted`` and are
    never sent again, except those last handed to ``resendable_provider`` (an idempotent
    provider: a repeat is delivered once), which go back to ``pending``, or close if they can
    never be sent (see :func:`_unless_closed`). ``in_flight``: the calling worker's own sends,
    alive whatever their lease says. Reports merely claimed (still ``pending``) need nothing:
    an expired lease makes them claimable again.
    """
    abandoned = [
        reports.c.status == ReportStatus.SENDING,
        reports.c.lease_expires_at < now,
        reports.c.id.not_in(list(in_flight)),
    ]
    returning = (reports.c.id, reports.c.mailing_id, reports.c.client_id, reports.c.status)
    cleared = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    reclaimed: list[Reclaimed] = []
    if resendable_provider is not None:
        resent_status, resent_error = _unless_closed(
            literal(now, UTCDateTime()), literal(None, String())
        )
        rows = await connection.execute(
            update(reports)
            .where(*abandoned, reports.c.provider == resendable_provider)
            .values(status=resent_status, error=resent_error, next_attempt_at=now, **cleared)
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
