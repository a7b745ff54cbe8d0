"""The scheduler's statements: which mailings start, which are finished, and when to look next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender.dispatch.repository._rows import mailings, reports
from sms_sender.mailings.models import MailingStatus
from sms_sender.reports.lifecycle import CANCELLED_WITH_MAILING, EXPIRED_AT_END
from sms_sender.reports.models import ReportStatus
from sms_sender.reports.repository import close_unsent


async def mailings_to_start(connection: AsyncConnection, now: datetime) -> list[int]:
    """Scheduled mailings whose start_at has come (even if their end passed while we were down)."""
    query = select(mailings.c.id).where(
        mailings.c.status == MailingStatus.SCHEDULED, mailings.c.start_at <= now
    )
    return list(await connection.scalars(query.order_by(mailings.c.start_at)))


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
class Finished:
    """A mailing just finished: at its end (``expired``: its unsent reports closed) or done."""

    mailing_id: int
    end_at: datetime
    ended: bool  # end_at came; else every report was final before it
    expired: int


def _over(now: datetime) -> ColumnElement[bool]:
    """A mailing is over: running with nothing left to send, or running or paused past its end."""
    unsent = (
        select(reports.c.id)
        .where(
            reports.c.mailing_id == mailings.c.id,
            reports.c.status.in_((ReportStatus.PENDING, ReportStatus.SENDING)),
        )
        .exists()
    )
    active = (MailingStatus.RUNNING, MailingStatus.PAUSED)
    return or_(
        and_(mailings.c.status == MailingStatus.RUNNING, ~unsent),
        and_(mailings.c.status.in_(active), mailings.c.end_at <= now),
    )


async def mailings_over(
    connection: AsyncConnection, now: datetime, mailing_ids: Sequence[int]
) -> list[int]:
    """Which of these mailings :func:`finish_mailings` would finish now (a read, no lock)."""
    query = select(mailings.c.id).where(_over(now), mailings.c.id.in_(list(mailing_ids)))
    return list(await connection.scalars(query))


async def finish_mailings(
    connection: AsyncConnection, now: datetime, mailing_ids: Sequence[int] | None = None
) -> list[Finished]:
    """Finish the mailings that are over (of ``mailing_ids``, or any); the one place that does.

    A mailing is over when it is running with nothing left to send, or running or paused and
    its end_at has come. The reports of the latter never handed to a provider expire in the
    same transaction; those in ``sending`` are left to the worker that holds them. Safe when
    several processes race: the status is a compare-and-set.
    """
    statement = update(mailings).where(_over(now))
    if mailing_ids is not None:
        statement = statement.where(mailings.c.id.in_(list(mailing_ids)))
    rows = await connection.execute(
        statement.values(status=MailingStatus.FINISHED, finished_at=now, updated_at=now).returning(
            mailings.c.id, mailings.c.end_at
        )
    )
    finished: list[Finished] = []
    for mailing_id, end_at in rows.all():
        ended = end_at <= now
        # One statement per mailing that ended: a handful at a time, and each count is logged.
        expired = (
            await close_unsent(connection, EXPIRED_AT_END, mailing_ids=[mailing_id], now=now)
            if ended
            else 0
        )
        finished.append(Finished(mailing_id, end_at, ended, expired))
    return finished


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
        # The ids as a list, not a subquery: the planner then probes the (mailing_id, status)
        # index per mailing instead of reading every pending report of the running ones.
        closing = CANCELLED_WITH_MAILING if status == MailingStatus.CANCELLED else EXPIRED_AT_END
        closed += await close_unsent(connection, closing, mailing_ids=mailing_ids, now=now)
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
