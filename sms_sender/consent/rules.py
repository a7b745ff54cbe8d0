"""Who a mailing may go to, as SQL over the clients table: one rule for fan-out and preview."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, literal, null

from sms_sender.clients.models import Client


class MailingPurpose(StrEnum):
    """Service messages go to every matching client; advertising only to those who agreed."""

    SERVICE = "service"
    ADVERTISING = "advertising"


class SkipReason(StrEnum):
    """Why a matching client gets a ``skipped`` report (its ``error``) instead of a message."""

    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"


def exclusions(purpose: MailingPurpose) -> list[tuple[ColumnElement[bool], SkipReason]]:
    """The conditions that exclude a client from a mailing of ``purpose``, first match wins."""
    rules: list[tuple[ColumnElement[bool], SkipReason]] = [
        (Client.opted_out_at.is_not(None), SkipReason.OPTED_OUT)
    ]
    if purpose == MailingPurpose.ADVERTISING:
        rules.append((Client.consent_at.is_(None), SkipReason.NO_CONSENT))
    return rules


def exclusion_reason(purpose: MailingPurpose) -> ColumnElement[Any]:
    """``CASE … END``: the client's :class:`SkipReason` for this mailing, or NULL if it may go."""
    return case(
        *((condition, literal(reason.value)) for condition, reason in exclusions(purpose)),
        else_=null(),
    )


def excluded_for(purpose: MailingPurpose, reason: SkipReason) -> ColumnElement[bool]:
    """True for the clients :func:`exclusion_reason` gives ``reason`` (earlier rules first)."""
    earlier: list[ColumnElement[bool]] = []
    for condition, rule_reason in exclusions(purpose):
        if rule_reason == reason:
            return and_(condition, *(~other for other in earlier))
        earlier.append(condition)
    return literal(False)


class PhoneHasher:
    """The suppression list's keyed hash of a phone: HMAC-SHA256, hex."""

    def __init__(self, key: bytes) -> None:
        # The key is set up once; each phone's HMAC starts from a copy of that state, half the
        # cost of hmac.digest, which sets the key up again on every call (an import hashes
        # every row).
        self._keyed = hmac.new(key, digestmod="sha256")

    def __call__(self, phone: str) -> str:
        mac = self._keyed.copy()
        mac.update(phone.encode())
        return mac.hexdigest()

    def many(self, phones: Iterable[str]) -> list[str]:
        """The hashes of the phones, in their order (one call for a batch)."""
        keyed = self._keyed
        hashes = []
        for phone in phones:
            mac = keyed.copy()
            mac.update(phone.encode())
            hashes.append(mac.hexdigest())
        return hashes
