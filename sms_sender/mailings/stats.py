"""Statistics of mailings: their reports counted by status (``/mailings/{id}/stats``, ``/stats``)
and the console dashboard's recent activity. Mailings own their reports, so the counting that
needs a mailing lives here and sms_sender.reports never imports sms_sender.mailings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.mailings import repository as mailings_repository
from sms_sender.mailings import service
from sms_sender.mailings.models import MailingStatus
from sms_sender.mailings.schemas import MailingStatsDetail, MailingStatsLine, OverallStats
from sms_sender.reports import repository as reports_repository
from sms_sender.reports.models import ReportStatus


async def mailing_stats(session: AsyncSession, mailing_id: int) -> MailingStatsDetail:
    """One mailing's reports by status and its skipped ones by reason; 404 for no mailing."""
    mailing = await service.get(session, mailing_id)
    counts = (await reports_repository.count_by_status(session, [mailing.id])).get(mailing.id, {})
    # The reasons are counters too (one row per reason); asked only if some were skipped.
    skipped = (
        await reports_repository.count_skipped_by_reason(session, mailing.id)
        if counts.get(ReportStatus.SKIPPED, 0)
        else {}
    )
    return MailingStatsDetail.of(counts, mailing_id=mailing.id, skipped_by_reason=skipped)


async def overall_stats(session: AsyncSession) -> OverallStats:
    """Reports by status over every mailing, and per mailing, from one grouped query."""
    rows = await mailings_repository.count_by_mailing_and_status(session)
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
    """Reports sent since each moment: ranges of the sent_at index, not every report read."""
    return Activity(
        since_day=await reports_repository.sent_by_status(session, day_start),
        since_week=await reports_repository.sent_by_status(session, week_start),
        per_minute=await reports_repository.sent_per_minute(session, hour_start),
        hour_start=hour_start,
    )
