"""The dashboard: what is running now, what comes next, and how sending went lately."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from sms_sender.admin.pages import PREFIX, ConsoleRoute, render, zone_of
from sms_sender.auth.endpoints import CurrentUser
from sms_sender.mailings import service as mailings
from sms_sender.mailings import stats
from sms_sender.mailings.models import MailingStatus
from sms_sender.mailings.schemas import MailingRead
from sms_sender.reports.models import ReportStatus
from sms_sender.web import ClockDep, ReadSessionDep

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

SHOWN_RUNNING = 20
SHOWN_SCHEDULED = 5
# Statuses a report leaves the queue with (everything but pending and sending).
DONE = [status for status in ReportStatus if status not in ("pending", "sending")]


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, user: CurrentUser) -> HTMLResponse:
    """The page; its figures come from dashboard.json, which the page polls every 2 s."""
    return render(request, "dashboard.html", {"statuses": list(ReportStatus)})


@router.get("/dashboard.json")
async def dashboard_figures(
    request: Request, user: CurrentUser, session: ReadSessionDep, clock: ClockDep
) -> dict[str, Any]:
    """What moves by the second: running and paused mailings, the next scheduled ones."""
    now = clock.now()
    active = []
    for status in (MailingStatus.RUNNING, MailingStatus.PAUSED):
        found = await mailings.page(session, status=status, after_id=0, limit=SHOWN_RUNNING)
        active += await mailings.describe(session, found[:SHOWN_RUNNING])
    return {
        "now": now.isoformat(),
        "active": [_progress(mailing) for mailing in active],
        "scheduled": [
            {"id": mailing.id, "start_at": mailing.start_at.isoformat(), "status": mailing.status}
            for mailing in await mailings.next_scheduled(session, SHOWN_SCHEDULED)
        ],
    }


@router.get("/activity.json")
async def activity_figures(
    request: Request, user: CurrentUser, session: ReadSessionDep, clock: ClockDep
) -> dict[str, Any]:
    """Totals today and for 7 days, and the last hour by minute; the page asks every 30 s.

    Counted over a partial index on sent_at (reports handed to a provider only), so the cost
    follows how many were sent in the period, not how many reports there are.
    """
    now = clock.now()
    local_now = now.astimezone(ZoneInfo(zone_of(request)))
    day_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    hour_start = (now - timedelta(minutes=59)).replace(second=0, microsecond=0)
    activity = await stats.activity(
        session,
        day_start=day_start,
        week_start=day_start - timedelta(days=6),
        hour_start=hour_start,
    )
    return {
        "today": activity.since_day,
        "week": activity.since_week,
        "per_minute": _series(activity.per_minute, activity.hour_start),
    }


def _progress(mailing: MailingRead) -> dict[str, Any]:
    """What a progress bar shows: counts by status, how many are done, and the end."""
    by_status = {str(status): count for status, count in mailing.counts.by_status.items()}
    return {
        "id": mailing.id,
        "status": mailing.status,
        "paused_reason": mailing.paused_reason,
        "total": mailing.counts.total,
        "done": sum(by_status[status] for status in DONE),
        "by_status": by_status,
        "end_at": mailing.end_at.isoformat(),
    }


def _series(rows: list[tuple[int, str, int]], start: datetime) -> list[dict[str, Any]]:
    """Sixty minutes from ``start``, each with its counts by status (empty minutes included)."""
    minutes: list[dict[str, Any]] = [
        {"at": (start + timedelta(minutes=offset)).isoformat(), "by_status": {}}
        for offset in range(60)
    ]
    for offset, status, count in rows:
        if 0 <= offset < 60:
            minutes[offset]["by_status"][status] = count
    return minutes
