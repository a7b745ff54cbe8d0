"""What the daily report says and when it is due; which alerts the database's state calls for.

Everything here reads the database as it stands (no hook in the engine): a mailing the engine
paused, a mailing that finished, reports that became ``unknown`` are all visible as rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender.config import Settings
from sms_sender.notifications import repository
from sms_sender.notifications.models import NotificationKind
from sms_sender.notifications.schemas import Alert, DailyReport, MailingFigures

# A service down for longer than this sends the reports of the last days only.
CATCH_UP_DAYS = 7
TOP_FAILURE_REASONS = 5
ALERT_EVERY = timedelta(hours=1)  # at most one alert of a kind about a mailing in this time
# The failure share needs every running mailing's reports counted: not at every poll.
FAILURE_SHARE_EVERY = timedelta(minutes=5)
# A failure share over fewer outcomes than this says more about luck than about the mailing.
FAILURE_SHARE_MIN_OUTCOMES = 20
# Statuses that are an outcome of a send (what the failure share is a share of).
OUTCOME_STATUSES = ("sent", "delivered", "undelivered", "failed", "unknown")


def notifications_wanted(settings: Settings) -> bool:
    """Whether anyone is to hear anything: a report recipient, an alert recipient or webhook."""
    return bool(settings.report_to or settings.alert_to or settings.alert_webhook_url)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The day's first moment and the next day's, in UTC (23 or 25 hours around a DST change)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def latest_reported_day(now: datetime, report_at: time, zone: ZoneInfo) -> date:
    """The last complete day whose report is due by ``now``: yesterday once report_at passed."""
    local = now.astimezone(zone)
    yesterday = local.date() - timedelta(days=1)
    return yesterday if local.time() >= report_at else yesterday - timedelta(days=1)


def days_due(latest: date, last_claimed: date | None) -> list[date]:
    """Days whose report nobody claimed yet, up to ``latest``: the ones missed while down too.

    A database that never had a report starts with the latest day, not with history.
    """
    if last_claimed is None:
        return [latest]
    first = max(last_claimed + timedelta(days=1), latest - timedelta(days=CATCH_UP_DAYS - 1))
    return [first + timedelta(days=n) for n in range((latest - first).days + 1)]


async def build_daily_report(
    connection: AsyncConnection, day: date, zone: ZoneInfo, now: datetime
) -> DailyReport:
    """The report of ``day``: every mailing running at some moment of it, counted now."""
    start, end = day_bounds(day, zone)
    mailings = await repository.mailings_active_between(connection, start, end)
    ids = [mailing.mailing_id for mailing in mailings]
    reasons = await repository.top_failure_reasons(connection, ids, TOP_FAILURE_REASONS)
    return DailyReport(day, str(zone), now, mailings, reasons)


async def alerts_due(
    connection: AsyncConnection, settings: Settings, now: datetime, *, failure_share: bool = True
) -> list[Alert]:
    """Alerts the database's state calls for, except those raised in the last hour.

    Only candidates are counted (counting a big mailing's reports takes a while), and the
    failure share, which needs every running mailing counted, only when ``failure_share``.
    """
    hour = now.astimezone(UTC).strftime("%Y-%m-%dT%H")
    recent = await repository.alerted_since(connection, now - ALERT_EVERY)

    def fresh(kind: NotificationKind, mailing_ids: Iterable[int]) -> list[int]:
        return sorted(set(mailing_ids) - {m for k, m in recent if k == kind})

    alerts: list[Alert] = []
    finished = fresh(
        NotificationKind.MAILING_FINISHED,
        await repository.finished_since(connection, now - ALERT_EVERY),
    )
    for figures in await repository.figures_of(connection, finished):
        # A mailing finishes once: its alert is claimed for good, not for an hour.
        alerts.append(_alert(NotificationKind.MAILING_FINISHED, figures, str(figures.mailing_id)))

    paused = await repository.paused_with_reason(connection)
    for figures in await repository.figures_of(
        connection, fresh(NotificationKind.MAILING_PAUSED, paused)
    ):
        reason = {"reason": paused[figures.mailing_id]}
        claim = f"{figures.mailing_id}@{hour}"
        alerts.append(_alert(NotificationKind.MAILING_PAUSED, figures, claim, reason))

    unknown = await repository.unknown_since(connection, now - ALERT_EVERY)
    for figures in await repository.figures_of(
        connection, fresh(NotificationKind.UNKNOWN_REPORTS, unknown)
    ):
        counts = {"unknown_new": unknown[figures.mailing_id], "unknown_total": figures.unknown}
        claim = f"{figures.mailing_id}@{hour}"
        alerts.append(_alert(NotificationKind.UNKNOWN_REPORTS, figures, claim, counts))

    if failure_share:
        active = fresh(
            NotificationKind.FAILURE_SHARE, await repository.active_mailing_ids(connection)
        )
        for figures in await repository.figures_of(connection, active):
            if share := _failure_share(figures, settings.alert_failure_share):
                claim = f"{figures.mailing_id}@{hour}"
                alerts.append(_alert(NotificationKind.FAILURE_SHARE, figures, claim, share))
    return alerts


def _failure_share(figures: MailingFigures, threshold: float) -> dict[str, Any] | None:
    outcomes = sum(figures.by_status.get(status, 0) for status in OUTCOME_STATUSES)
    if outcomes < FAILURE_SHARE_MIN_OUTCOMES or figures.failed / outcomes <= threshold:
        return None
    return {
        "failed_share": round(figures.failed / outcomes, 4),
        "outcomes": outcomes,
        "threshold": threshold,
    }


def _alert(
    kind: NotificationKind,
    figures: MailingFigures,
    claim: str,
    extra: dict[str, Any] | None = None,
) -> Alert:
    return Alert(
        kind, figures.mailing_id, claim, {**(extra or {}), "figures": figures.as_payload()}
    )
