"""All SQL of the delivery engine: claim, hand over, settle, put off, reclaim; schedule; delivery.

Every statement is set-based: a batch of reports costs one statement, never one per message.
Statements that change a report the worker holds name, in their WHERE, the state the worker
expects (``pending`` or ``sending``, its own lease), so a report that was cancelled, expired or
reclaimed meanwhile is left alone instead of being overwritten. The engine runs them on plain
Core connections: no ORM objects, no session bookkeeping in the hot path.
"""

from sqlalchemy.exc import DBAPIError

from sms_sender.dispatch.repository._delivery import (
    AwaitingDelivery,
    awaiting_delivery,
    record_delivery,
)
from sms_sender.dispatch.repository._schedule import (
    close_left_pending,
    count_due,
    count_running,
    finish_completed,
    mailings_to_end,
    mailings_to_start,
    next_mailing_event_at,
)
from sms_sender.dispatch.repository._settle import (
    ENDED_BEFORE_SEND,
    Reclaimed,
    Settlement,
    outcome_unknown,
    pause_mailings,
    reclaim,
    settle,
)
from sms_sender.dispatch.repository._work import (
    ClaimedReport,
    MailingTerms,
    claim,
    hand_over,
    mailing_terms,
    next_due_at,
    put_off,
    release,
    renew,
)

# Errors that say "the database (or the network to it) is unavailable right now".
UNAVAILABLE = (DBAPIError, OSError, TimeoutError)

__all__ = [
    "ENDED_BEFORE_SEND",
    "UNAVAILABLE",
    "AwaitingDelivery",
    "ClaimedReport",
    "MailingTerms",
    "Reclaimed",
    "Settlement",
    "awaiting_delivery",
    "claim",
    "close_left_pending",
    "count_due",
    "count_running",
    "finish_completed",
    "hand_over",
    "mailing_terms",
    "mailings_to_end",
    "mailings_to_start",
    "next_due_at",
    "next_mailing_event_at",
    "outcome_unknown",
    "pause_mailings",
    "put_off",
    "reclaim",
    "record_delivery",
    "release",
    "renew",
    "settle",
]
