"""The consent routes' bodies and answers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from sms_sender.consent.models import SOURCE_MAX_LENGTH, ConsentChange
from sms_sender.phones import Phone

Source = Annotated[
    str,
    Field(
        min_length=1,
        max_length=SOURCE_MAX_LENGTH,
        description="Where the request to stop came from, kept as proof.",
        examples=["phone call to support, ticket 4411"],
    ),
]


class OptOutRequest(BaseModel):
    """How the client asked to stop."""

    model_config = ConfigDict(extra="forbid")

    source: Source | None = None


class PhoneOptOutRequest(OptOutRequest):
    """Opt a phone out, whether or not a client has it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"phone": "79001234567", "source": "e-mail to support"}]},
    )

    phone: Phone


class PhoneOptOut(BaseModel):
    phone: str = Field(examples=["79001234567"])
    client_id: int | None = Field(
        description="The client with this phone, opted out; null when there is none (the "
        "phone is still suppressed: a later import of it comes in opted out).",
        examples=[315],
    )


class StopListResult(BaseModel):
    """The outcome of a stop-list import."""

    phones: int = Field(description="Valid phones in the file, each now opted out.", examples=[40])
    clients: int = Field(
        description="Clients having one of the phones, all now opted out.", examples=[31]
    )
    errors: list[dict[str, Any]] = Field(
        description="Rejected lines: `{line, error}`, up to 1,000.", examples=[[]]
    )


class ConsentEventRead(BaseModel):
    """One change of a client's consent or opt-out, kept as proof."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[12])
    client_id: int = Field(examples=[315])
    change: ConsentChange = Field(
        description="consent_given, consent_withdrawn, opted_out, or opt_out_cleared (by a "
        "consent given after the opt-out)."
    )
    effective_at: datetime = Field(description="When the change took effect.")
    recorded_at: datetime = Field(description="When this service recorded it.")
    source: str | None = Field(
        description="Where and how: the consent's source, the opt-out's.", examples=["STOP reply"]
    )
    actor: str = Field(
        description="Who made the change: `token:NAME`, `inbound webhook`, `suppression list`.",
        examples=["token:crm"],
    )


_NOT_DIGITS = re.compile(r"[^0-9]")


def _phone_digits(value: Any) -> Any:
    # Gateways write the sender as +7 900 123-45-67 or 79001234567; keep only the digits.
    return _NOT_DIGITS.sub("", value) if isinstance(value, str) else value


class InboundMessage(BaseModel):
    """A reply a gateway forwards: who wrote it, and what."""

    model_config = ConfigDict(
        extra="ignore",  # gateways add their own fields (ids, timestamps)
        json_schema_extra={"examples": [{"phone": "+7 900 123-45-67", "text": "СТОП"}]},
    )

    phone: Annotated[Phone, BeforeValidator(_phone_digits)]
    text: str = Field(max_length=2000, description="The reply's text.")


class InboundResult(BaseModel):
    stop: bool = Field(description="The text was a stop word: the phone is opted out.")
    client_id: int | None = Field(description="The client with this phone, if any.")
