"""The scheduler's statements: which mailings start, end or are done, and when to look next."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender.dispatch.repository._rows import mailings, reports
from sms_sender.mailings.models import MailingStatus
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
