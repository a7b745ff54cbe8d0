"""How a worker's sends end: answers settled (written to their reports) in batches; sends
abandoned by a dead worker reclaimed.

A report that goes back to ``pending`` either way is closed instead when it can never be sent
(see :func:`_unless_closed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ColumnElement, String, case, func, literal, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender.db import UTCDateTime
from sms_sender.dispatch.repository._rows import (
    mailings,
    of_mailing,
    reports,
    status_is,
    update_each,
)
from sms_sender.dispatch.types import Settlement
from sms_sender.mailings.models import MailingStatus
from sms_sender.reports.lifecycle import (
    CLIENT_DELETED,
    ENDED_BEFORE_SEND,
    MAILING_CANCELLED,
    WORKER_DIED,
    outcome_unknown,
)
from sms_sender.reports.models import ERROR_SIZE, ReportStatus


def fit(text: str | None, size: int) -> str | None:
    """A string from outside cut to its column's size: a longer one must not fail the write."""
    return text[:size] if text is not None else None


def _unless_closed(
    next_attempt_at: ColumnElement[Any], error: ColumnElement[Any]
) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Status and error of a report going back to ``pending``, unless it can never be sent.

    Cancel and end_at close only ``pending`` reports, and claims take only those of running
    mailings and live clients; a report that returns to ``pending`` after either would wait
    forever. So the return itself looks at the mailing and client as they are now:
    ``cancelled`` for a deleted client or a cancelled mailing, ``expired`` for a finished
    mailing or a next attempt at or after end_at.
    """
    mailing_status = of_mailing(mailings.c.status)
    end_at = of_mailing(mailings.c.end_at)
    client_deleted = reports.c.client_id.is_(None)
    cancelled = mailing_status == MailingStatus.CANCELLED.value
    ended = or_(mailing_status == MailingStatus.FINISHED.value, next_attempt_at >= end_at)
    status = case(
        (client_deleted, ReportStatus.CANCELLED.value),
        (cancelled, ReportStatus.CANCELLED.value),
        (ended, ReportStatus.EXPIRED.value),
        else_=ReportStatus.PENDING.value,
    )
    reason = case(
        (client_deleted, CLIENT_DELETED),
        (cancelled, MAILING_CANCELLED),
        (ended, ENDED_BEFORE_SEND),
        else_=error,
    )
    return status, reason


async def settle(
    connection: AsyncConnection, settlements: Sequence[Settlement], *, owner: str, now: datetime
) -> int:
    """Write the outcome of sends, leaving alone reports no longer ``sending`` under our lease."""
    return await update_each(
        connection,
        {
            "id": BigInteger(),
            "status": String(),
            "error": String(),
            "provider_message_id": String(),
            "sent_at": UTCDateTime(),
            "next_attempt_at": UTCDateTime(),
            "attempted": Boolean(),
        },
        [
            (
                settled.report_id,
                settled.status.value,
                settled.error,
                settled.provider_message_id,
                settled.sent_at,
                settled.next_attempt_at,
                settled.attempted,
            )
            for settled in settlements
        ],
        lambda row: _settled_values(row, now),
        guard=[status_is(ReportStatus.SENDING), reports.c.lease_owner == owner],
    )


def _settled_values(row: Mapping[str, ColumnElement[Any]], now: datetime) -> dict[str, Any]:
    """A settlement's columns; one that goes back to ``pending`` may close instead (see above)."""
    next_attempt_at = func.coalesce(row["next_attempt_at"], reports.c.next_attempt_at)
    status_if_pending, error_if_pending = _unless_closed(next_attempt_at, row["error"])
    back_to_pending = row["status"] == ReportStatus.PENDING.value
    return {
        "status": case((back_to_pending, status_if_pending), else_=row["status"]),
        "error": case((back_to_pending, error_if_pending), else_=row["error"]),
        "attempts": reports.c.attempts - case((row["attempted"], 0), else_=1),
        "provider_message_id": row["provider_message_id"],
        "sent_at": func.coalesce(row["sent_at"], reports.c.sent_at),
        "next_attempt_at": next_attempt_at,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
    }


async def pause_mailings(
    connection: AsyncConnection, reasons: Mapping[int, str], *, now: datetime
) -> list[int]:
    """Pause these running mailings, each with its reason; the ids of those paused now."""
    paused: list[int] = []
    for mailing_id, reason in reasons.items():  # one per mailing of a batch: a handful at most
        rows = await connection.scalars(
            update(mailings)
            .where(mailings.c.id == mailing_id, mailings.c.status == MailingStatus.RUNNING)
            .values(
                status=MailingStatus.PAUSED, paused_reason=fit(reason, ERROR_SIZE), updated_at=now
            )
            .returning(mailings.c.id)
        )
        paused += list(rows)
    return paused


@dataclass(frozen=True, slots=True)
class Reclaimed:
    report_id: int
    mailing_id: int
    client_id: int | None
    status: str


async def reclaim(
    connection: AsyncConnection,
    *,
    now: datetime,
    in_flight: Sequence[int],
    resendable_provider: str | None,
    dead_owners: Sequence[str] = (),
) -> list[Reclaimed]:
    """Take over ``sending`` reports whose lease expired, or whose owner died: outcome unknown.

    A live worker renews the leases of its sends, so an expired one means its worker died, or
    lost track of it (a commit whose answer never arrived). They become ``unknown`` and are
    never sent again, except those last handed to ``resendable_provider`` (an idempotent
    provider: a repeat is delivered once), which go back to ``pending``, or close if they can
    never be sent (see :func:`_unless_closed`). ``in_flight``: the calling worker's own sends,
    alive whatever their lease says. ``dead_owners``: workers known dead (heartbeat stopped,
    or process gone), whose sends are taken over without waiting for their leases (see
    :mod:`sms_sender.dispatch.heartbeat`). Reports merely claimed (still ``pending``) need
    nothing here: an expired lease makes them claimable again, and a dead owner's are released
    by :func:`release_claims_of`.
    """
    expired = reports.c.lease_expires_at < now
    abandoned = [
        reports.c.status == ReportStatus.SENDING,
        or_(expired, reports.c.lease_owner.in_(list(dead_owners))) if dead_owners else expired,
        reports.c.id.not_in(list(in_flight)),
    ]
    returning = (reports.c.id, reports.c.mailing_id, reports.c.client_id, reports.c.status)
    cleared = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    reclaimed: list[Reclaimed] = []
    if resendable_provider is not None:
        resent_status, resent_error = _unless_closed(
            literal(now, UTCDateTime()), literal(None, String())
        )
        rows = await connection.execute(
            update(reports)
            .where(*abandoned, reports.c.provider == resendable_provider)
            .values(status=resent_status, error=resent_error, next_attempt_at=now, **cleared)
            .returning(*returning)
        )
        reclaimed += [Reclaimed(*row) for row in rows]
    rows = await connection.execute(
        update(reports)
        .where(*abandoned)
        .values(
            status=ReportStatus.UNKNOWN,
            error=outcome_unknown(WORKER_DIED),
            **cleared,
        )
        .returning(*returning)
    )
    return reclaimed + [Reclaimed(*row) for row in rows]
