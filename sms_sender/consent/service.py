"""Consent rules: giving and withdrawing consent, opting out, and what each change stops.

Nothing here commits. Opting out is in ``_opt_out.py`` (re-exported here, the domain's face):
one transaction that marks the clients, writes the audit entries and suppression hashes, skips
the clients' unsent reports, and only then lets the caller commit, once every send already
handed over to a provider has started: when the opt-out's commit is visible, no later send to
them begins.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import reasons
from sms_sender.audit.actor import current_actor
from sms_sender.clients.models import Client
from sms_sender.consent import repository
from sms_sender.consent._opt_out import opt_out_clients as opt_out_clients
from sms_sender.consent._opt_out import opt_out_phones as opt_out_phones
from sms_sender.consent.models import ConsentChange, ConsentEvent, Suppression
from sms_sender.consent.rules import PhoneHasher
from sms_sender.errors import InvalidInput, NotFound

_log = structlog.get_logger(__name__)

SUPPRESSION_LIST = "suppression list"
# How long an opt-out waits for the answers of sends in flight to its clients (PostgreSQL).


@dataclass(frozen=True)
class GivenConsent:
    """A consent as a request states it: when the person agreed, and where or how."""

    at: datetime
    source: str


@dataclass(frozen=True)
class ConsentState:
    """A client's consent columns."""

    consent_at: datetime | None = None
    consent_source: str | None = None
    opted_out_at: datetime | None = None
    opt_out_source: str | None = None

    @classmethod
    def of(cls, client: Client) -> ConsentState:
        return cls(
            client.consent_at, client.consent_source, client.opted_out_at, client.opt_out_source
        )

    def columns(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Decision:
    """A new consent state, the audit entries that explain it, and whether to unsuppress."""

    state: ConsentState
    events: list[tuple[ConsentChange, datetime, str | None, str]] = field(default_factory=list)
    clears_suppression: bool = False


def decide(
    current: ConsentState,
    *,
    consent: GivenConsent | None,
    withdraw: bool = False,
    suppression: Suppression | None = None,
    actor: str,
    now: datetime,
) -> Decision:
    """Apply a suppression entry, then a given (or withdrawn) consent; the later of consent
    and opt-out wins, so only a consent given after the opt-out ends it."""
    decision = Decision(current)
    if suppression is not None and current.opted_out_at is None:
        source = _suppression_source(suppression)
        decision.state = dataclasses.replace(
            decision.state, opted_out_at=suppression.opted_out_at, opt_out_source=source
        )
        decision.events.append(
            (ConsentChange.OPTED_OUT, suppression.opted_out_at, source, SUPPRESSION_LIST)
        )
    if consent is not None:
        decision.state = dataclasses.replace(
            decision.state, consent_at=consent.at, consent_source=consent.source
        )
        decision.events.append((ConsentChange.CONSENT_GIVEN, consent.at, consent.source, actor))
        opted_out_at = decision.state.opted_out_at
        if opted_out_at is not None and consent.at > opted_out_at:
            decision.state = dataclasses.replace(
                decision.state, opted_out_at=None, opt_out_source=None
            )
            decision.events.append(
                (ConsentChange.OPT_OUT_CLEARED, consent.at, consent.source, actor)
            )
            decision.clears_suppression = True
    elif withdraw and decision.state.consent_at is not None:
        decision.state = dataclasses.replace(decision.state, consent_at=None, consent_source=None)
        decision.events.append((ConsentChange.CONSENT_WITHDRAWN, now, None, actor))
    return decision


def check_consent(consent: GivenConsent | None, now: datetime) -> None:
    if consent is not None and consent.at > now:
        raise InvalidInput.field(
            ["body", "consent_at"],
            reasons.CONSENT_IN_FUTURE,
            consent_at=consent.at.isoformat(),
            now=now.isoformat(),
        )


def decide_for_new(
    consent: GivenConsent | None,
    suppression: Suppression | None,
    *,
    actor: str,
    now: datetime,
) -> Decision:
    """The consent state of a client about to be added: its phone's suppression entry (read by
    the caller, ``clients.repository.add``), then its consent."""
    check_consent(consent, now)
    return decide(ConsentState(), consent=consent, suppression=suppression, actor=actor, now=now)


async def suppress_new_clients(
    session: AsyncSession, phones: Sequence[str], *, hasher: PhoneHasher, now: datetime
) -> int:
    """Opt out the just-added clients whose phone is on the suppression list (an import).

    One lookup per batch; the clients found (rare) are opted out as the entry says, each with
    an audit entry. Returns how many. An empty list (the usual case) is seen at once, and no
    phone is hashed: the hashes were a quarter of the API's CPU in a large import.
    """
    if not phones or await repository.suppression_list_is_empty(session):
        return 0
    by_hash = dict(zip(hasher.many(phones), phones, strict=True))
    entries = await repository.suppressions(session, list(by_hash))
    if not entries:
        return 0
    opt_outs = [
        (by_hash[phone_hash], entry.opted_out_at, _suppression_source(entry))
        for phone_hash, entry in entries.items()
    ]
    ids = await repository.opt_out_by_phone(session, opt_outs)
    await repository.add_events(
        session,
        [
            {
                "client_id": ids[phone],
                "change": ConsentChange.OPTED_OUT.value,
                "effective_at": at,
                "recorded_at": now,
                "source": source,
                "actor": SUPPRESSION_LIST,
            }
            for phone, at, source in opt_outs
        ],
    )
    _log.info("imported clients kept opted out", client_ids=sorted(ids.values()))
    return len(ids)


async def record_imported_consents(
    session: AsyncSession,
    consents: Sequence[tuple[str, GivenConsent]],
    *,
    hasher: PhoneHasher,
    now: datetime,
) -> None:
    """Give the just-imported clients their file's consent, by the same rule as the API.

    After :func:`suppress_new_clients`: a consent later than a suppressed phone's opt-out ends
    it, an earlier one leaves the client opted out. A few statements per batch.
    """
    if not consents:
        return
    actor = current_actor_label()
    by_phone = dict(consents)
    decisions: dict[int, tuple[str, Decision]] = {}
    for client in await repository.clients_by_phone(session, list(by_phone)):
        decision = decide(
            ConsentState.of(client), consent=by_phone[client.phone], actor=actor, now=now
        )
        decisions[client.id] = (client.phone, decision)
    await repository.set_consent_states(
        session, {client_id: d.state.columns() for client_id, (_, d) in decisions.items()}
    )
    for client_id, (phone, decision) in decisions.items():
        await _record_events(session, client_id, decision, now=now)
        if decision.clears_suppression:
            await repository.unsuppress(session, hasher(phone))


def current_actor_label() -> str:
    """Who is acting (the bound audit actor), as consent entries name them: ``api:NAME``."""
    actor = current_actor()
    return f"{actor.source}:{actor.name}"


def _suppression_source(entry: Suppression) -> str:
    return f"{SUPPRESSION_LIST}: {entry.source}" if entry.source else SUPPRESSION_LIST


async def record(
    session: AsyncSession,
    client_id: int,
    phone: str,
    decision: Decision,
    *,
    hasher: PhoneHasher,
    now: datetime,
) -> None:
    """Write the decision's audit entries (and clear the suppression entry it ends)."""
    await _record_events(session, client_id, decision, now=now)
    if decision.clears_suppression:
        await repository.unsuppress(session, hasher(phone))


async def _record_events(
    session: AsyncSession, client_id: int, decision: Decision, *, now: datetime
) -> None:
    await repository.add_events(
        session,
        [
            {
                "client_id": client_id,
                "change": change.value,
                "effective_at": effective_at,
                "recorded_at": now,
                "source": source,
                "actor": actor,
            }
            for change, effective_at, source, actor in decision.events
        ],
    )
    for change, _, source, actor in decision.events:
        _log.info(
            "consent changed", client_id=client_id, change=change.value, source=source, actor=actor
        )


async def forget_client(
    session: AsyncSession, client: Client, *, hasher: PhoneHasher, now: datetime
) -> None:
    """Before a client's delete: its history stays (without its id); an opt-out stays listed."""
    await repository.detach_events(session, client.id)
    if client.opted_out_at is not None:
        await repository.suppress(
            session, [hasher(client.phone)], at=client.opted_out_at, source=client.opt_out_source
        )


async def history_page(
    session: AsyncSession, client: Client, *, after_id: int, limit: int
) -> Sequence[ConsentEvent]:
    return await repository.events_page(session, client.id, after_id=after_id, limit=limit)


async def latest_history(
    session: AsyncSession, client: Client, *, limit: int
) -> Sequence[ConsentEvent]:
    """The client's newest consent changes, newest first (the console's client page)."""
    return await repository.latest_events(session, client.id, limit=limit)


async def hasher_for(session: AsyncSession, configured_key: str) -> PhoneHasher:
    """The suppression hasher: the configured key, else the one the migration stored."""
    if configured_key:
        return PhoneHasher(configured_key.encode())
    stored = await repository.stored_key(session)
    if stored is None:
        raise NotFound("the suppression key is missing; run sms-sender migrate")
    return PhoneHasher(bytes.fromhex(stored))


_NOT_LETTERS = re.compile(r"[\W_]+")


def _normalised(text: str) -> str:
    """Letters and digits only, case-folded: ' Stop! ' and 'STOP' are the same word."""
    return _NOT_LETTERS.sub("", text).casefold()


def is_stop_word(text: str, stop_words: str) -> bool:
    """Whether a reply asks to stop: it is one of the comma-separated stop words."""
    words = {_normalised(word) for word in stop_words.split(",")}
    words.discard("")
    return _normalised(text) in words
