"""The scheduler's statements: which mailings start, end or are done, and when to look next."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender.dispatch.repository._rows import mailings, reports
from sms_sender.mailings.models import MailingStatus
from sms_sender.reports.lifecycle import ENDED_BEFORE_SEND, MAILING_CANCELLED
from sms_sender.reports.models import ReportStatus


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


# How long after its end a mailing is still looked at for reports left pending (see below).
STRAGGLERS_HORIZON = timedelta(days=1)


async def close_left_pending(connection: AsyncConnection, now: datetime) -> int:
    """Close ``pending`` reports of finished or cancelled mailings: nothing would ever send them.

    Settlements and reclaims already close such a report instead of returning it to
    ``pending``, reading the mailing in the same statement; only one that raced the cancel or
    end in a concurrent transaction can still land there, moments after the mailing ended. So
    only mailings ended within STRAGGLERS_HORIZON are looked at, each through the
    (mailing_id, status) index: the cost follows the mailings that ended lately, not the
    history or the size of the queue. One statement per final status (two at most).
    """
    ended: dict[str, list[int]] = {}
    for mailing_id, status in await connection.execute(
        select(mailings.c.id, mailings.c.status).where(
            mailings.c.status.in_((MailingStatus.FINISHED, MailingStatus.CANCELLED)),
            mailings.c.finished_at >= now - STRAGGLERS_HORIZON,
        )
    ):
        ended.setdefault(status, []).append(mailing_id)
    closed = 0
    for status, mailing_ids in ended.items():
        if status == MailingStatus.CANCELLED:
            closing, reason = ReportStatus.CANCELLED, MAILING_CANCELLED
        else:
            closing, reason = ReportStatus.EXPIRED, ENDED_BEFORE_SEND
        # The ids as a list, not a subquery: the planner then probes the (mailing_id, status)
        # index per mailing instead of reading every pending report of the running ones.
        result = await connection.execute(
            update(reports)
            .where(reports.c.mailing_id.in_(mailing_ids), reports.c.status == ReportStatus.PENDING)
            .values(
                status=closing,
                error=reason,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        closed += int(result.rowcount)
    return closed


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
