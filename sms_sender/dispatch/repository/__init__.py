"""All SQL of the delivery engine: claim, hand over, settle, put off, reclaim; schedule; delivery.

Every statement is set-based: a batch of reports costs one statement, never one per message.
Statements that change a report the worker holds name, in their WHERE, the state the worker
expects (``pending`` or ``sending``, its own lease), so a report that was cancelled, expired or
reclaimed meanwhile is left alone instead of being overwritten. The engine runs them on plain
Core connections: no ORM objects, no session bookkeeping in the hot path.
"""

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError

from sms_sender.dispatch.repository._counts import fold_counts
from sms_sender.dispatch.repository._delivery import (
    AwaitingDelivery,
    awaiting_delivery,
    record_delivery,
)
from sms_sender.dispatch.repository._schedule import (
    Finished,
    close_left_pending,
    count_due,
    count_running,
    finish_mailings,
    mailings_over,
    mailings_to_start,
    next_mailing_event_at,
)
from sms_sender.dispatch.repository._settle import (
    Reclaimed,
    fit,
    pause_mailings,
    reclaim,
    settle,
)
from sms_sender.dispatch.repository._work import (
    claim,
    hand_over,
    mailing_terms,
    next_due_at,
    put_off,
    release,
    renew,
    skip_opted_out,
)
from sms_sender.dispatch.repository._workers import (
    beat,
    beats,
    forget,
    last_seen,
    release_claims_of,
)
from sms_sender.dispatch.types import ClaimedReport, MailingTerms, Settlement

# Errors that say "the database (or the network to it) is unavailable right now".
UNAVAILABLE = (DBAPIError, OSError, TimeoutError)

# SQLSTATE classes of "this statement's data is wrong": data exception (a value too long, out
# of range), integrity constraint violation, syntax error or access rule violation.
_BAD_DATA_STATES = ("22", "23", "42")


def is_bad_data(error: BaseException) -> bool:
    """Whether the database refused the statement's data: a bug of that batch, not an outage.

    Waiting and trying the same again never helps. SQLite's driver says so by the exception's
    class; asyncpg's errors reach SQLAlchemy as a plain ``DBAPIError``, so its SQLSTATE says.
    """
    if isinstance(error, DataError | IntegrityError | ProgrammingError):
        return True
    state = getattr(getattr(error, "orig", None), "sqlstate", None)
    return (
        isinstance(error, DBAPIError) and isinstance(state, str) and state[:2] in _BAD_DATA_STATES
    )


__all__ = [
    "UNAVAILABLE",
    "AwaitingDelivery",
    "ClaimedReport",
    "Finished",
    "MailingTerms",
    "Reclaimed",
    "Settlement",
    "awaiting_delivery",
    "beat",
    "beats",
    "claim",
    "close_left_pending",
    "count_due",
    "count_running",
    "finish_mailings",
    "fit",
    "fold_counts",
    "forget",
    "hand_over",
    "is_bad_data",
    "last_seen",
    "mailing_terms",
    "mailings_over",
    "mailings_to_start",
    "next_due_at",
    "next_mailing_event_at",
    "pause_mailings",
    "put_off",
    "reclaim",
    "record_delivery",
    "release",
    "release_claims_of",
    "renew",
    "settle",
    "skip_opted_out",
]
