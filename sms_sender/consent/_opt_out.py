"""Opting clients and phones out, and stopping every send to them before the commit.

One transaction marks the clients, writes the audit entries and suppression hashes, skips the
clients' unsent reports, and only then lets the caller commit, once every send already handed
over to a provider has started (see :func:`_stop_sends`): when the opt-out's commit is
visible, no later send to them begins. Nothing here commits. Re-exported by
``consent.service``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import dialects
from sms_sender.consent import repository
from sms_sender.consent.models import ConsentChange
from sms_sender.consent.rules import PhoneHasher, SkipReason
from sms_sender.dispatch import ratelimit
from sms_sender.reports import lifecycle
from sms_sender.reports import repository as reports_repository

_log = structlog.get_logger(__name__)

IN_FLIGHT_WAIT = 2.0
_IN_FLIGHT_POLL = 0.02


async def opt_out_clients(
    session: AsyncSession,
    client_ids: Sequence[int],
    *,
    source: str | None,
    actor: str,
    hasher: PhoneHasher,
    now: datetime,
) -> int:
    """Opt the clients out and stop every send to them; returns how many were not already."""
    # Before anything is read: a mailing starting meanwhile has either made its reports
    # (skipped below) or starts after the commit and sees the opt-out (reports.repository).
    await reports_repository.wait_for_fan_outs(session)
    changed = await repository.opt_out(session, client_ids, at=now, source=source)
    await repository.add_events(
        session,
        [
            {
                "client_id": client_id,
                "change": ConsentChange.OPTED_OUT.value,
                "effective_at": now,
                "recorded_at": now,
                "source": source,
                "actor": actor,
            }
            for client_id, _ in changed
        ],
    )
    await repository.suppress(
        session, [hasher(phone) for _, phone in changed], at=now, source=source
    )
    await _stop_sends(session, client_ids, now)
    for client_id, _ in changed:
        _log.info("client opted out", client_id=client_id, source=source, actor=actor)
    return len(changed)


async def opt_out_phones(
    session: AsyncSession,
    phones: Sequence[str],
    *,
    source: str | None,
    actor: str,
    hasher: PhoneHasher,
    now: datetime,
) -> dict[str, int | None]:
    """Opt out by phone: the client owning it, if any, and the phone's suppression entry.

    Returns each phone's client id (None when no client has it: the entry alone keeps a later
    import of the phone opted out).
    """
    await reports_repository.wait_for_fan_outs(session)
    owners = await repository.ids_by_phone(session, phones)
    await opt_out_clients(
        session, list(owners.values()), source=source, actor=actor, hasher=hasher, now=now
    )
    strangers = [phone for phone in phones if phone not in owners]
    await repository.suppress(
        session, [hasher(phone) for phone in strangers], at=now, source=source
    )
    if strangers:
        _log.info("phones without a client suppressed", count=len(strangers), actor=actor)
    return {phone: owners.get(phone) for phone in phones}


async def _stop_sends(session: AsyncSession, client_ids: Sequence[int], now: datetime) -> None:
    """Skip the clients' unsent reports, then let sends already handed over start first.

    A worker commits a report as ``sending`` just before its provider call, which starts
    within :func:`_call_start_bound`. PostgreSQL: the skipped rows stay locked, so no new
    hand-over of them can happen; those already handed over are waited for until answered
    (at most IN_FLIGHT_WAIT), skipping again any that came back ``pending`` for a retry.
    SQLite: this transaction holds the only write lock, so no answer can be recorded before
    it commits; waiting for the calls' start bound is enough, as no new hand-over can commit.
    """
    deadline = time.monotonic() + IN_FLIGHT_WAIT
    while True:
        await reports_repository.close_unsent(
            session, lifecycle.skipped(SkipReason.OPTED_OUT), client_ids=client_ids, now=now
        )
        in_flight = await reports_repository.count_sending_of_clients(session, client_ids)
        if not in_flight:
            return
        if dialects.writes_lock_whole_database(session):
            await asyncio.sleep(_call_start_bound() * 2)
            return
        if time.monotonic() >= deadline:
            _log.warning("opt-out commits with sends still unanswered", in_flight=in_flight)
            return
        await asyncio.sleep(_IN_FLIGHT_POLL)


def _call_start_bound() -> float:
    """How long a report marked ``sending`` waits at most for its rate slot (dispatch.ratelimit)."""
    return ratelimit.GROUP_SECONDS + ratelimit.PROMPT
