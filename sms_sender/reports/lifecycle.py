"""A report's life in one place: its statuses, what moves it, the reasons it gives, and the
answer to "may this report go now?".

    pending ─hand-over─▶ sending ─accepted─▶ sent ─(provider reports)─▶ delivered | undelivered
       ▲                    │
       └── retry, window, ──┤─refused──────▶ failed
           no funds         ├─no readable answer, worker died─▶ unknown ─(operator)─▶ pending
                            └─end came first─▶ expired
    pending ─end_at─▶ expired      pending ─cancel, client deleted─▶ cancelled
    (made) ─advertising without consent, opted out─▶ skipped   (the consent rules)

Who applies these: the engine's worker (:mod:`sms_sender.dispatch`) for everything between a
claim and its record, the engine for a mailing's end (``dispatch.repository.finish_mailings``,
the one statement that makes a mailing ``finished``), the mailings service for cancel and
resend-unknown, the clients service for a deleted client, the consent service for an opt-out.
The SQL that writes each transition lives in the repositories; reports never handed over close
through one statement, ``reports.repository.close_unsent``, given a :class:`Closing`. The rules
and the words come from here.

"May this report go now?" has two halves, both asked right before a send:

* :func:`may_go_now`, in memory: the mailing's end and its send window, read at the hand-over;
* the hand-over statement (``dispatch.repository.hand_over``), in the database and in the same
  transaction that marks the report ``sending``: the mailing still running and before its end,
  the client not deleted. A check that needs the database (a client's opt-out, say) belongs
  there, next to these; a check on the report and its mailing's terms belongs in
  :func:`may_go_now`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sms_sender.providers.base import Outcome, SendResult
from sms_sender.reports.models import (
    UNSENT_REPORT_STATUSES,
    ReportStatus,
)

__all__ = [
    "CANCELLED_WITH_MAILING",
    "CLIENT_DELETED",
    "ENDED_BEFORE_SEND",
    "EXPIRED_AT_END",
    "MAILING_CANCELLED",
    "UNSENT_REPORT_STATUSES",
    "WORKER_DIED",
    "Clearance",
    "Closing",
    "ReportStatus",
    "Transition",
    "after_answer",
    "gave_up",
    "may_go_now",
    "not_sent",
    "outcome_unknown",
    "requeued_by",
    "skipped",
    "unrecorded",
]

# -- reasons, as the report's `error` shows them ------------------------------------------------

CLIENT_DELETED = "client deleted"
MAILING_CANCELLED = "mailing cancelled"
ENDED_BEFORE_SEND = "end_at reached before it could be sent"
WORKER_DIED = "the worker sending it stopped mid-send"


def outcome_unknown(why: str) -> str:
    """The error of an ``unknown`` report: what happened, and that it is not sent again."""
    return f"outcome unknown ({why}); not sent again to avoid a duplicate"


def unrecorded(status: ReportStatus, said: str) -> tuple[ReportStatus, str]:
    """Status and error of a report whose result the database refused to store (``said``).

    Accepted, or answered unclearly: the provider may have the message, so it is ``unknown``
    (never sent again); otherwise it certainly was not sent and the report fails.
    """
    reason = f"the provider's answer could not be recorded: {said}"
    if status in (ReportStatus.SENT, ReportStatus.UNKNOWN):
        return ReportStatus.UNKNOWN, outcome_unknown(reason)
    return ReportStatus.FAILED, reason


def gave_up(attempts: int, error: str) -> str:
    return f"gave up after {attempts} attempts: {error}"


def requeued_by(who: str) -> str:
    """The error of an ``unknown`` report an operator queued again (resend-unknown)."""
    return f"queued again by {who} after an unknown outcome"


# -- closing what was never sent ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Closing:
    """How reports never handed to a provider close: the final status and the reason it shows."""

    status: ReportStatus
    reason: str


CANCELLED_WITH_MAILING = Closing(ReportStatus.CANCELLED, MAILING_CANCELLED)
EXPIRED_AT_END = Closing(ReportStatus.EXPIRED, ENDED_BEFORE_SEND)


def skipped(reason: str) -> Closing:
    """Skipped by a consent rule (an opt-out), with that rule's reason."""
    return Closing(ReportStatus.SKIPPED, str(reason))


# -- may it go now? ----------------------------------------------------------------------------


class Window(Protocol):
    def next_opening(self, now: datetime, timezone: str) -> datetime | None:
        """None if ``now`` is inside the window in ``timezone``; else when it next opens."""
        ...


class Verdict(StrEnum):
    GO = "go"
    LATER = "later"  # outside its send window: put off until it opens
    NEVER = "never"  # its mailing ended (or is gone): the scheduler closes it


@dataclass(frozen=True, slots=True)
class Clearance:
    verdict: Verdict
    opens_at: datetime | None = None  # for LATER


GO = Clearance(Verdict.GO)
NEVER = Clearance(Verdict.NEVER)


def may_go_now(
    *, now: datetime, end_at: datetime | None, window: Window | None, timezone: str
) -> Clearance:
    """The in-memory half of "may this report go now?" (see the module docstring).

    ``end_at`` None: its mailing is not known (deleted since the claim).
    """
    if end_at is None or now >= end_at:
        return NEVER
    opening = window.next_opening(now, timezone) if window is not None else None
    return GO if opening is None else Clearance(Verdict.LATER, opening)


# -- what an answer does to a report -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    """Where a report that was ``sending`` goes, and what it records."""

    status: ReportStatus
    error: str | None = None
    provider_message_id: str | None = None
    sent: bool = False  # accepted now: sent_at is now
    next_attempt_at: datetime | None = None
    attempted: bool = True  # False: the attempt counted at hand-over is given back
    pauses_mailing: bool = False  # the provider's account cannot pay


RetryAt = Callable[[int, str, datetime], datetime | None]


def not_sent(next_attempt_at: datetime, error: str | None = None) -> Transition:
    """Back to ``pending`` with no call made (a window that closed, shutdown before the call)."""
    return Transition(
        ReportStatus.PENDING, error=error, next_attempt_at=next_attempt_at, attempted=False
    )


def after_answer(
    result: SendResult | None,
    *,
    why_none: str,
    attempts: int,
    idempotent: bool,
    now: datetime,
    retry_at: RetryAt,
) -> Transition:
    """The transition of a report given its provider's answer (None: none usable, ``why_none``).

    ``attempts`` counts this one; ``retry_at`` is the retry policy (None: give up).
    """
    if result is None:
        return _unknown(
            why_none, attempts=attempts, idempotent=idempotent, now=now, retry_at=retry_at
        )
    error = result.error or result.outcome.value
    match result.outcome:
        case Outcome.ACCEPTED:
            return Transition(
                ReportStatus.SENT, provider_message_id=result.provider_message_id, sent=True
            )
        case Outcome.EXPIRED:
            return Transition(ReportStatus.EXPIRED, error=error)
        case Outcome.PERMANENT:
            return Transition(ReportStatus.FAILED, error=error)
        case Outcome.UNKNOWN:
            return _unknown(
                error, attempts=attempts, idempotent=idempotent, now=now, retry_at=retry_at
            )
        case Outcome.NO_FUNDS:
            # Certainly not sent, and sending more is pointless until the account is topped up.
            return Transition(
                ReportStatus.PENDING,
                error=error,
                next_attempt_at=now,
                attempted=False,
                pauses_mailing=True,
            )
    return _retry(error, attempts=attempts, now=now, retry_at=retry_at, after=result.retry_after)


def _unknown(
    why: str, *, attempts: int, idempotent: bool, now: datetime, retry_at: RetryAt
) -> Transition:
    """The call may have reached the gateway: sent again only if the provider de-duplicates."""
    if idempotent:
        return _retry(f"outcome unknown: {why}", attempts=attempts, now=now, retry_at=retry_at)
    return Transition(ReportStatus.UNKNOWN, error=outcome_unknown(why))


def _retry(
    error: str, *, attempts: int, now: datetime, retry_at: RetryAt, after: float | None = None
) -> Transition:
    """Pending again at the policy's time, never before the gateway's Retry-After; or failed."""
    next_attempt_at = retry_at(attempts, error, now)
    if next_attempt_at is None:
        return Transition(ReportStatus.FAILED, error=gave_up(attempts, error))
    if after is not None:
        next_attempt_at = max(next_attempt_at, now + timedelta(seconds=after))
    return Transition(ReportStatus.PENDING, error=error, next_attempt_at=next_attempt_at)
