from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sms_sender import reasons
from sms_sender.messages.encoding import Encoding

MessageText = Field(
    min_length=1,
    max_length=1600,
    # NUL cannot be stored by PostgreSQL nor sent as SMS; every other character can.
    json_schema_extra={"pattern": "^[^\\x00]*$"},
    description="The SMS text, 1-1600 characters (no NUL).",
    examples=["Winter sale: -20% on everything until Sunday!"],
)


def _without_nul(text: str) -> str:
    if "\x00" in text:
        raise reasons.TEXT_WITH_NUL.invalid()
    return text


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, AfterValidator(_without_nul)] = MessageText


class MessageUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, AfterValidator(_without_nul)] = MessageText


class MessageRead(BaseModel):
    id: int = Field(examples=[1])
    text: str
    length: int = Field(description="Length in the encoding's units (GSM-7 extension chars: 2).")
    encoding: Encoding
    segments: int = Field(description="SMS segments the network bills: 160/153 GSM-7, 70/67 UCS-2.")
    created_at: datetime
    updated_at: datetime
