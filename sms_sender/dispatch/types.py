"""The values a worker passes between its steps: a claimed report, its mailing's terms, and how
its send ended (a settlement). Plain frozen data; the SQL that reads and writes them is in
:mod:`sms_sender.dispatch.repository`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sms_sender.dispatch.window import DailyWindow
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
    window: DailyWindow | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one send ended, as it is written to its report: "settling" it, in dispatch's words.

    Only this is called settling; a dead worker's sends are *reclaimed* (taken over), a
    delivery status is *recorded*.
    """

    report_id: int
    mailing_id: int
    client_id: int | None
    status: ReportStatus
    error: str | None = None
    provider_message_id: str | None = None
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    # False when the provider was never called (shutdown before the call, a window that
    # closed, a refusal for lack of funds): the attempt counted at hand-over is given back.
    attempted: bool = True
    # The provider's account cannot pay: the mailing pauses, with ``error`` as the reason.
    pauses_mailing: bool = False
