"""The provider protocol: how the engine hands messages to an SMS gateway.

A provider is anything with ``name``, ``idempotent`` and ``async send(batch) -> results``. The
worker calls ``send`` with the messages it is allowed to send right now (already rate limited,
already checked against end_at) and gets one ``SendResult`` per message, in the same order.

Contract for implementers:

* Never raise for a per-message failure. Classify it by *when* it failed:
  ``SendResult.transient(...)`` only when nothing reached the gateway (DNS, connect, TLS, no
  pooled connection in time, deadline passed before writing) or the gateway said "not now"
  (429, 503, an explicit try-later code; pass its ``Retry-After`` as ``retry_after``);
  ``SendResult.permanent(...)`` for an explicit refusal (4xx, a reject code, with the reason);
  ``SendResult.unknown(...)`` for anything after the request bytes were written with no clear
  answer (read timeout, reset, 500/502/504, an unparseable 2xx, a body too large): the gateway
  may have the message; ``SendResult.no_funds(...)`` when the account cannot pay (the engine
  pauses the mailing). An answer that cannot be parsed is never a success.
* ``idempotent = True`` only if sending the same ``OutgoingMessage.report_id`` twice delivers
  once (the gateway deduplicates on it). The engine then re-sends a message whose outcome was
  lost in a crash; otherwise such a message is marked ``unknown`` and never sent again.
* ``text_limits`` says which texts the gateway can take at all (``NO_TEXT_LIMITS`` when it
  takes any text the message itself allows); the API refuses a mailing whose text does not fit.
* ``valid_for`` is how long until the mailing's end_at, counted from the moment ``send`` is
  called; pass it on where the gateway accepts a validity period. A provider that can still
  wait before the message leaves (for a pooled connection, say) must not let it leave after
  that: return ``SendResult.expired(...)`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    report_id: int
    mailing_id: int
    client_id: int | None
    phone: str
    text: str
    valid_for: timedelta


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"  # certainly not accepted: safe to send again later
    PERMANENT = "permanent"  # refused for good, with the gateway's reason
    UNKNOWN = "unknown"  # the request left; whether the gateway has it, nobody can tell
    NO_FUNDS = "no_funds"  # refused because the account cannot pay: pause, not fail
    EXPIRED = "expired"  # not sent: the mailing's end came before the message could leave


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the gateway asked us to wait (TRANSIENT only)

    @classmethod
    def accepted(cls, provider_message_id: str | None = None) -> SendResult:
        return cls(Outcome.ACCEPTED, provider_message_id=provider_message_id)

    @classmethod
    def transient(cls, error: str, retry_after: float | None = None) -> SendResult:
        return cls(Outcome.TRANSIENT, error=error, retry_after=retry_after)

    @classmethod
    def unknown(cls, error: str) -> SendResult:
        return cls(Outcome.UNKNOWN, error=error)

    @classmethod
    def no_funds(cls, error: str) -> SendResult:
        return cls(Outcome.NO_FUNDS, error=error)

    @classmethod
    def permanent(cls, error: str) -> SendResult:
        return cls(Outcome.PERMANENT, error=error)

    @classmethod
    def expired(cls, error: str) -> SendResult:
        return cls(Outcome.EXPIRED, error=error)


@dataclass(frozen=True, slots=True)
class TextLimits:
    """The text lengths (in characters) a gateway accepts."""

    min_chars: int = 1
    max_chars: int | None = None

    def problem(self, text: str) -> str | None:
        """Why the gateway cannot send ``text``, as a sentence, or None if it can."""
        if len(text) < self.min_chars or (
            self.max_chars is not None and len(text) > self.max_chars
        ):
            upper = f" to {self.max_chars:,}" if self.max_chars is not None else " or more"
            return (
                f"the text has {len(text):,} characters; the gateway takes {self.min_chars}{upper}"
            )
        return None


NO_TEXT_LIMITS = TextLimits()


class TrackingThrottled(Exception):
    """The gateway asked us to ask about delivery less often (HTTP 429 on a status call)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    UNKNOWN = "unknown"


class Provider(Protocol):
    name: str
    idempotent: bool
    text_limits: TextLimits

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        """Hand each message to the gateway; one result per message, in order."""
        ...


class DeliveryTracking(Protocol):
    """Optional: a provider that can say whether a sent message reached the phone.

    ``status_lifetime`` is how long after sending the gateway can still tell; a message older
    than that is not asked about any more. ``delivery_status`` raises ``TrackingThrottled``
    when the gateway asks for fewer questions.
    """

    status_lifetime: timedelta

    async def delivery_status(
        self, provider_message_ids: Sequence[str]
    ) -> dict[str, DeliveryStatus]:
        """The final status of each id the gateway knows; UNKNOWN while still in transit."""
        ...
