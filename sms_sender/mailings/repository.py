"""All SQL over mailings.

Status changes that can race with another process (the scheduler starting or finishing a
mailing while a user pauses it) are either made on a row locked with :func:`get_for_change`
or as a compare-and-set UPDATE whose WHERE names the status it expects.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.mailings.models import Mailing, MailingStatus
from sms_sender.messages.models import Message
from sms_sender.reports.models import MailingReportCount


async def add(session: AsyncSession, mailing: Mailing) -> Mailing:
    session.add(mailing)
    await session.flush()
    return mailing


async def get(session: AsyncSession, mailing_id: int) -> Mailing | None:
    return await session.get(Mailing, mailing_id)


async def get_for_change(session: AsyncSession, mailing_id: int) -> Mailing | None:
    """The mailing, its row locked until commit (PostgreSQL; SQLite writers are serialised)."""
    query = (
        select(Mailing)
        .where(Mailing.id == mailing_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).one_or_none()


async def page(
    session: AsyncSession, *, status: MailingStatus | None, after_id: int, limit: int
) -> Sequence[Mailing]:
    """Up to ``limit + 1`` mailings after ``after_id`` (the extra one says a next page exists)."""
    query = select(Mailing).where(Mailing.id > after_id)
    if status is not None:
        query = query.where(Mailing.status == status)
    return (await session.scalars(query.order_by(Mailing.id).limit(limit + 1))).all()


async def find_message_text(session: AsyncSession, message_id: int) -> str | None:
    """The text of a message, or None when there is no such message.

    The row stays key-share locked until commit (PostgreSQL), so a concurrent delete of the
    message waits for the mailing that uses it and then sees it in use.
    """
    query = select(Message.text).where(Message.id == message_id)
    return await session.scalar(query.with_for_update(read=True, key_share=True))


async def message_text_of(session: AsyncSession, mailing: Mailing) -> str:
    """The current text of the mailing's message (a foreign key guarantees it exists)."""
    query = select(Message.text).where(Message.id == mailing.message_id)
    return (await session.scalars(query)).one()


async def change_status(
    session: AsyncSession,
    mailing_id: int,
    *,
    expected: Collection[MailingStatus],
    status: MailingStatus,
    now: datetime,
    **values: datetime,
) -> Mailing | None:
    """Move the mailing to ``status`` only if it is still in one of ``expected``.

    Returns the mailing as stored after the move, or None when it was not in ``expected``.
    """
    result = await session.execute(
        update(Mailing)
        .where(Mailing.id == mailing_id, Mailing.status.in_(list(expected)))
        .values(status=status, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if int(result.rowcount) != 1:  # type: ignore[attr-defined]
        return None
    return await session.get(Mailing, mailing_id, populate_existing=True)


async def delete_mailing(session: AsyncSession, mailing: Mailing) -> None:
    """Delete the mailing (its reports first: reports.repository.delete_of_mailing)."""
    await session.delete(mailing)
    await session.flush()


async def next_scheduled(session: AsyncSession, limit: int) -> Sequence[Mailing]:
    """The scheduled mailings that start soonest (the (status, start_at) index answers it)."""
    query = (
        select(Mailing)
        .where(Mailing.status == MailingStatus.SCHEDULED)
        .order_by(Mailing.start_at, Mailing.id)
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def count_by_mailing_and_status(
    session: AsyncSession,
) -> Sequence[tuple[int, str, str | None, int]]:
    """(mailing id, mailing status, report status, count) for every mailing, in id order.

    One statement over the counters: a mailing without reports still appears, once, with a
    null report status.
    """
    groups = (
        select(
            MailingReportCount.mailing_id,
            MailingReportCount.status.label("report_status"),
            func.sum(MailingReportCount.reports).label("reports"),
        )
        .group_by(MailingReportCount.mailing_id, MailingReportCount.status)
        .having(func.sum(MailingReportCount.reports) > 0)
        .subquery()
    )
    rows = await session.execute(
        select(Mailing.id, Mailing.status, groups.c.report_status, groups.c.reports)
        .outerjoin(groups, groups.c.mailing_id == Mailing.id)
        .order_by(Mailing.id)
    )
    return [
        (mailing_id, status, report_status, int(reports or 0))
        for mailing_id, status, report_status, reports in rows
    ]
