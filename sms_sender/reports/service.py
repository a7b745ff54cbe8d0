"""Reading reports and counting them; the engine, not this module, changes their status."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.errors import NotFound
from sms_sender.mailings import repository as mailings_repository
from sms_sender.mailings import service as mailings_service
from sms_sender.mailings.models import MailingStatus
from sms_sender.reports import repository
from sms_sender.reports.models import Report, ReportStatus
from sms_sender.reports.schemas import MailingStatsDetail, MailingStatsLine, OverallStats


async def get(session: AsyncSession, report_id: int) -> Report:
    report = await repository.get(session, report_id)
    if report is None:
        raise NotFound(f"report {report_id} does not exist")
    return report


async def page(
    session: AsyncSession,
    *,
    mailing_id: int | None,
    status: ReportStatus | None,
    phone: str | None,
    after_id: int,
    limit: int,
) -> Sequence[Report]:
    return await repository.page(
        session, mailing_id=mailing_id, status=status, phone=phone, after_id=after_id, limit=limit
    )


async def mailing_stats(session: AsyncSession, mailing_id: int) -> MailingStatsDetail:
    """One mailing's reports by status and its skipped ones by reason; 404 for no mailing."""
    mailing = await mailings_service.get(session, mailing_id)
    counts = await repository.count_by_status(session, [mailing.id])
    skipped = await repository.count_skipped_by_reason(session, mailing.id)
    return MailingStatsDetail.of(
        counts.get(mailing.id, {}), mailing_id=mailing.id, skipped_by_reason=skipped
    )


async def overall_stats(session: AsyncSession) -> OverallStats:
    """Reports by status over every mailing, and per mailing, from one grouped query."""
    rows = await repository.count_by_mailing_and_status(session)
    totals: Counter[str] = Counter()
    lines = []
    for (mailing_id, mailing_status), groups in groupby(rows, key=lambda row: row[:2]):
        counts = {status: count for _, _, status, count in groups if status is not None}
        totals.update(counts)
        lines.append(
            MailingStatsLine.of(counts, mailing_id=mailing_id, status=MailingStatus(mailing_status))
        )
    return OverallStats.of(totals, mailings=lines)


@dataclass(frozen=True)
class Activity:
    """How sending went lately: totals since two moments and a per-minute series."""

    since_day: dict[str, int]
    since_week: dict[str, int]
    per_minute: list[tuple[int, str, int]]  # (minute after ``hour_start``, status, count)
    hour_start: datetime


async def activity(
    session: AsyncSession, *, day_start: datetime, week_start: datetime, hour_start: datetime
) -> Activity:
    """Reports sent since each moment, counted only over mailings that could have sent then."""
    week_ids = await mailings_repository.ids_sending_since(session, week_start)
    day_ids = await mailings_repository.ids_sending_since(session, day_start)
    hour_ids = await mailings_repository.ids_sending_since(session, hour_start)
    return Activity(
        since_day=await repository.sent_by_status(session, day_ids, day_start),
        since_week=await repository.sent_by_status(session, week_ids, week_start),
        per_minute=await repository.sent_per_minute(session, hour_ids, hour_start),
        hour_start=hour_start,
    )
