"""Rules of the client directory: defaults, unique phones, deletion that keeps history."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import reasons
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.service import entry_values, record, written
from sms_sender.clients import repository
from sms_sender.clients.models import Client
from sms_sender.clients.schemas import ClientCreate, ClientUpdate, Facets
from sms_sender.consent import service as consent_service
from sms_sender.consent.rules import PhoneHasher
from sms_sender.consent.service import ConsentState, GivenConsent
from sms_sender.errors import Conflict, NotFound
from sms_sender.reports.repository import detach_client, wait_for_fan_outs

_CONSENT_FIELDS = ("consent_at", "consent_source")


@dataclass(frozen=True)
class ClientFields:
    """A client's stored values once the defaults are applied."""

    phone: str
    operator_code: str
    tag: str | None
    timezone: str


def with_defaults(payload: ClientCreate, default_timezone: str) -> ClientFields:
    """Fill what the payload left out: operator_code from the phone, the default time zone."""
    return ClientFields(
        phone=payload.phone,
        operator_code=payload.operator_code or default_operator_code(payload.phone),
        tag=payload.tag,
        timezone=payload.timezone or default_timezone,
    )


def default_operator_code(phone: str) -> str:
    """Digits 2-4 of the phone: 79001234567 -> 900."""
    return phone[1:4]


def given_consent(payload: ClientCreate | ClientUpdate) -> GivenConsent | None:
    if payload.consent_at is None or payload.consent_source is None:
        return None
    return GivenConsent(payload.consent_at, payload.consent_source)


async def create(
    session: AsyncSession,
    payload: ClientCreate,
    *,
    default_timezone: str,
    hasher: PhoneHasher,
    actor: str,
    now: datetime,
) -> Row[Any]:
    """Add a client; a phone on the suppression list comes in opted out (unless a later consent).

    The phone's suppression entry is read by the client's INSERT itself, so the client goes in
    as if it had none; in the rare case it has one, the decision with it is written after.
    """
    fields = with_defaults(payload, default_timezone)
    consent = given_consent(payload)
    decision = consent_service.decide_for_new(consent, None, actor=actor, now=now)
    # vars, not asdict: the fields are flat, and asdict copies each value recursively.
    values = vars(fields) | decision.state.columns() | {"created_at": now, "updated_at": now}
    audit_entry = entry_values(AuditAction.CREATED, AuditTarget.CLIENT)
    try:
        added = await repository.add(
            session, values, phone_hash=hasher(fields.phone), audit_entry=audit_entry
        )
    except repository.PhoneInUse:
        raise await _phone_conflict(session, fields.phone) from None
    row = added.row
    written(session, audit_entry, row.id, added.audit_id)
    if added.suppression is not None:
        unsuppressed = decision
        decision = consent_service.decide_for_new(consent, added.suppression, actor=actor, now=now)
        if decision.state != unsuppressed.state:
            row = await repository.set_consent(session, row.id, decision.state.columns())
    await consent_service.record(session, row.id, row.phone, decision, hasher=hasher, now=now)
    return row


async def get(session: AsyncSession, client_id: int) -> Client:
    client = await repository.get(session, client_id)
    if client is None:
        raise NotFound.because(reasons.CLIENT_NOT_FOUND, client_id=client_id)
    return client


async def page(
    session: AsyncSession,
    *,
    after_id: int,
    limit: int,
    tags: Collection[str] = (),
    operator_codes: Collection[str] = (),
) -> Sequence[Row[Any]]:
    return await repository.page(
        session, after_id=after_id, limit=limit, tags=tags, operator_codes=operator_codes
    )


search_in_phone_order = repository.search_in_phone_order


async def search(
    session: AsyncSession, *, after_id: int, after_phone: str, limit: int, **filters: str
) -> Sequence[Row[Any]]:
    """A page of clients by phone prefix, tag, operator code and time zone (the console).

    In id order, or in phone order when :func:`search_in_phone_order` says so.
    """
    return await repository.search(
        session, after_id=after_id, after_phone=after_phone, limit=limit, **filters
    )


async def replace(
    session: AsyncSession,
    client_id: int,
    payload: ClientCreate,
    *,
    default_timezone: str,
    hasher: PhoneHasher,
    actor: str,
    now: datetime,
) -> Client:
    """PUT: the payload is the whole new client; what it leaves out takes its default.

    Consent is the exception: left out, the stored consent stays (it is proof, not a setting).
    """
    client = await get(session, client_id)
    values = asdict(with_defaults(payload, default_timezone))
    return await _update(session, client, values, payload, hasher=hasher, actor=actor, now=now)


async def update(
    session: AsyncSession,
    client_id: int,
    payload: ClientUpdate,
    *,
    hasher: PhoneHasher,
    actor: str,
    now: datetime,
) -> Client:
    """PATCH: change only the fields the payload names."""
    client = await get(session, client_id)
    values = payload.model_dump(exclude_unset=True, exclude=set(_CONSENT_FIELDS))
    return await _update(session, client, values, payload, hasher=hasher, actor=actor, now=now)


async def delete(
    session: AsyncSession, client_id: int, *, hasher: PhoneHasher, now: datetime
) -> None:
    """Delete the client, cancelling its unsent reports; its reports stay, with client_id null.

    So does its consent history, and an opt-out stays on the suppression list.
    """
    # Before the client is read: a mailing starting meanwhile has then either made its reports
    # for the client (detached below) or will not see the client at all (reports.repository).
    await wait_for_fan_outs(session)
    client = await get(session, client_id)
    await detach_client(session, client.id, now)
    await consent_service.forget_client(session, client, hasher=hasher, now=now)
    await repository.delete(session, client)
    await record(session, AuditAction.DELETED, AuditTarget.CLIENT, client_id)


async def facets(session: AsyncSession) -> Facets:
    values = await repository.facet_values(session)
    return Facets(tags=values.get("tag", []), operator_codes=values.get("operator_code", []))


async def _update(
    session: AsyncSession,
    client: Client,
    values: dict[str, Any],
    payload: ClientCreate | ClientUpdate,
    *,
    hasher: PhoneHasher,
    actor: str,
    now: datetime,
) -> Client:
    decision = None
    if "consent_at" in payload.model_fields_set:
        consent = given_consent(payload)
        consent_service.check_consent(consent, now)
        decision = consent_service.decide(
            ConsentState.of(client),
            consent=consent,
            withdraw=consent is None,
            actor=actor,
            now=now,
        )
        values = values | decision.state.columns()
    try:
        await repository.update(session, client, values | {"updated_at": now})
    except repository.PhoneInUse:
        # Only a new phone can break a constraint, so "phone" is among the values here.
        raise await _phone_conflict(session, values["phone"]) from None
    await record(session, AuditAction.CHANGED, AuditTarget.CLIENT, client.id, ", ".join(values))
    if decision is not None:
        await consent_service.record(
            session, client.id, client.phone, decision, hasher=hasher, now=now
        )
    return client


async def _phone_conflict(session: AsyncSession, phone: str) -> Conflict:
    owner = await repository.id_by_phone(session, phone)
    return Conflict.because(reasons.PHONE_TAKEN, phone=phone, owner=owner)
