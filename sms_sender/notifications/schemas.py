"""What the daily report and the alerts say, as plain values (rendered by ``render``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sms_sender.notifications.models import NotificationKind
from sms_sender.reports.models import ReportStatus

# The shares the report shows: "failed" counts the provider's refusals and the messages it
# accepted but could not deliver, since both mean the client got nothing.
FAILED_STATUSES = (ReportStatus.FAILED, ReportStatus.UNDELIVERED)
UNKNOWN_STATUS = ReportStatus.UNKNOWN


class _Counted:
    """Shares of a count of reports by status (``by_status``)."""

    by_status: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def delivered(self) -> int:
        return self.by_status.get(ReportStatus.DELIVERED, 0)

    @property
    def failed(self) -> int:
        return sum(self.by_status.get(status, 0) for status in FAILED_STATUSES)

    @property
    def expired(self) -> int:
        return self.by_status.get(ReportStatus.EXPIRED, 0)

    @property
    def unknown(self) -> int:
        return self.by_status.get(UNKNOWN_STATUS, 0)

    def share(self, count: int) -> float:
        """``count`` as a share of every report counted (0 when there is none)."""
        return count / self.total if self.total else 0.0


@dataclass(frozen=True)
class StatusCounts(_Counted):
    """Reports counted by status, e.g. the totals of a report's mailings."""

    by_status: dict[str, int]


@dataclass(frozen=True)
class MailingFigures(_Counted):
    """One mailing's reports counted by status, as they stand when the figures are taken."""

    mailing_id: int
    status: str
    start_at: datetime
    end_at: datetime
    by_status: dict[str, int]

    def as_payload(self) -> dict[str, Any]:
        return {
            "mailing_id": self.mailing_id,
            "status": self.status,
            "start_at": self.start_at.isoformat(),
            "end_at": self.end_at.isoformat(),
            "total": self.total,
            "by_status": dict(sorted(self.by_status.items())),
        }


@dataclass(frozen=True)
class DailyReport:
    """The mailings active on ``day`` (in ``timezone``) and how their reports stand."""

    day: date
    timezone: str
    made_at: datetime
    mailings: list[MailingFigures]
    top_failure_reasons: list[tuple[str, int]]

    @property
    def totals(self) -> StatusCounts:
        """Every listed mailing's counts added up."""
        summed: Counter[str] = Counter()
        for mailing in self.mailings:
            summed.update(mailing.by_status)
        return StatusCounts(dict(summed))


@dataclass(frozen=True)
class Alert:
    """Something about one mailing that needs a person; ``claim`` makes it once an hour."""

    kind: NotificationKind
    mailing_id: int
    claim: str
    payload: dict[str, Any] = field(default_factory=dict)
