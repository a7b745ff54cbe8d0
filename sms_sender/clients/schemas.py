"""The client's public shape and its rules, shared by the JSON API and the CSV import."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from sms_sender import reasons
from sms_sender.errors import shown
from sms_sender.phones import Phone, is_phone
from sms_sender.timestamps import UtcDatetime

# [0-9], not \d: \d also matches other scripts' digits, such as Arabic-Indic ones.
_OPERATOR_CODE = re.compile(r"[0-9]{3}")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
TAG_MAX_LENGTH = 64


def _is_operator_code(value: str) -> bool:
    return _OPERATOR_CODE.fullmatch(value) is not None


def _check_operator_code(value: str) -> str:
    if not _is_operator_code(value):
        raise reasons.OPERATOR_CODE_FORMAT.invalid(got=shown(value))
    return value


_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def _known_timezones() -> frozenset[str]:
    # Files of the host's tz database that are not zones: "localtime" would make a client's
    # send window depend on the server's own zone.
    return frozenset(available_timezones()) - _NOT_ZONES


def _check_timezone(value: str) -> str:
    if value not in _known_timezones():
        raise reasons.TIMEZONE_UNKNOWN.invalid(got=shown(value))
    return value


def _blank_tag_is_no_tag(value: Any) -> Any:
    # A CSV cell or a form field cannot say null; an empty tag means "no tag" everywhere.
    return None if value == "" else value


OperatorCode = Annotated[
    str,
    AfterValidator(_check_operator_code),
    Field(
        description="The mobile operator's 3-digit code.",
        examples=["900"],
        json_schema_extra={"pattern": "^[0-9]{3}$"},
    ),
]
Timezone = Annotated[
    str,
    AfterValidator(_check_timezone),
    Field(
        description="The client's IANA time zone; a mailing's send window is in this local time.",
        examples=["Europe/Moscow"],
        # The list lets a client (and Swagger UI) pick a valid zone instead of guessing.
        json_schema_extra=lambda schema: schema.update(enum=sorted(_known_timezones())),
    ),
]


def _is_printable(value: str) -> bool:
    return _CONTROL_CHARACTER.search(value) is None


def _printable_tag(value: str) -> str:
    if not _is_printable(value):
        raise reasons.TAG_CONTROL_CHARACTER.invalid(got=shown(value))
    return value


TagText = Annotated[
    str,
    Field(max_length=TAG_MAX_LENGTH, json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f]*$"}),
    AfterValidator(_printable_tag),
]
Tag = Annotated[
    TagText | None,
    BeforeValidator(_blank_tag_is_no_tag),
    Field(
        description=f"A free label mailings can select by, up to {TAG_MAX_LENGTH} characters; "
        "null or empty for none.",
        examples=["vip"],
    ),
]


ConsentAt = Annotated[
    UtcDatetime,
    Field(
        description="When the person agreed to receive advertising (ISO 8601 with an offset); "
        "not in the future. Needs consent_source.",
        examples=["2026-11-30T10:15:00+03:00"],
    ),
]
ConsentSource = Annotated[
    str,
    AfterValidator(_printable_tag),
    Field(
        min_length=1,
        max_length=200,
        description="Where and how the consent was given, as proof: a form, a shop, a call.",
        examples=["web form /subscribe, checkbox 'send me offers'"],
    ),
]


class _ConsentFields(BaseModel):
    """consent_at and consent_source go together."""

    consent_at: ConsentAt | None = None
    consent_source: ConsentSource | None = None

    @model_validator(mode="after")
    def _consent_with_source(self) -> _ConsentFields:
        if self.consent_at is not None and self.consent_source is None:
            raise reasons.CONSENT_WITHOUT_SOURCE.invalid()
        if self.consent_at is None and self.consent_source is not None:
            raise reasons.SOURCE_WITHOUT_CONSENT.invalid()
        return self


_DEFAULTS_NOTE = (
    "operator_code defaults to phone digits 2-4 and timezone to the service's default time zone."
)


class ClientCreate(_ConsentFields):
    """A new client, or (PUT) the full new state of one; omitted fields take their defaults."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "description": f"Only phone is required; {_DEFAULTS_NOTE} consent_at and "
            "consent_source record a consent to advertising (PUT keeps the stored consent "
            "when they are left out); a phone that opted out earlier stays opted out unless "
            "the consent is later than the opt-out.",
            "examples": [
                {"phone": "79001234567", "tag": "vip", "timezone": "Europe/Moscow"},
                {"phone": "79161234567", "operator_code": "916", "tag": None},
            ],
        },
    )

    phone: Phone
    operator_code: OperatorCode | None = None
    tag: Tag = None
    timezone: Timezone | None = None


def surely_accepted(phone: str, operator_code: str, tag: str, timezone: str) -> bool:
    """True when ClientCreate accepts these text values, "" meaning left out (the CSV import).

    The same rules checked without building a model, for a row the import can take as it
    is; False means "ask ClientCreate" (for its verdict and its message), not "invalid".
    tests/clients/test_csv_rows.py holds the two to the same verdicts.
    """
    return (
        is_phone(phone)
        and (not operator_code or _is_operator_code(operator_code))
        and len(tag) <= TAG_MAX_LENGTH
        and _is_printable(tag)
        and (not timezone or timezone in _known_timezones())
    )


class ClientUpdate(_ConsentFields):
    """Only the fields given change; a new phone does not change the stored operator_code."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "description": "Only the fields given change; tag: null removes the tag. "
            "operator_code is not re-derived from a new phone: send it too, or use PUT. "
            "consent_at with consent_source records a consent (ending an earlier opt-out); "
            "consent_at: null withdraws it. Opt out with POST /clients/{id}/opt-out.",
            "examples": [{"tag": "lapsed"}, {"phone": "79001234568", "operator_code": "900"}],
        },
    )

    phone: Phone | None = None
    operator_code: OperatorCode | None = None
    tag: Tag = None
    timezone: Timezone | None = None

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Say in the schema what the validator below enforces: only tag may be null."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        for field in ("phone", "operator_code", "timezone"):
            prop = schema["properties"][field]
            options = [option for option in prop.pop("anyOf") if option.get("type") != "null"]
            prop.update(options[0])
            prop.pop("default", None)
        return schema

    @model_validator(mode="before")
    @classmethod
    def _only_tag_may_be_null(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for field in ("phone", "operator_code", "timezone"):
                if field in value and value[field] is None:
                    raise reasons.CLIENT_FIELD_NOT_NULL.invalid(field=field)
        return value


class ClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[1])
    phone: str = Field(examples=["79001234567"])
    operator_code: str = Field(examples=["900"])
    tag: str | None = Field(examples=["vip"])
    timezone: str = Field(examples=["Europe/Moscow"])
    created_at: datetime
    updated_at: datetime
    consent_at: datetime | None = Field(
        description="When the client agreed to advertising; null: no consent."
    )
    consent_source: str | None = Field(examples=["web form /subscribe"])
    opted_out_at: datetime | None = Field(
        description="When the client asked to receive nothing more; null: not opted out."
    )
    opt_out_source: str | None = Field(examples=["inbound reply 'СТОП'"])


class Facets(BaseModel):
    """What the directory holds, for building a mailing filter."""

    tags: list[str] = Field(
        description="Every distinct tag in the directory, sorted.", examples=[["new", "vip"]]
    )
    operator_codes: list[str] = Field(
        description="Every distinct operator code in the directory, sorted.",
        examples=[["900", "916"]],
    )


class RowError(BaseModel):
    line: int = Field(description="Line number in the file; the header is line 1.", examples=[7])
    error: str = Field(
        examples=["phone must be 11 digits starting with 7, like 79001234567; got '8900123'"]
    )


class ImportResult(BaseModel):
    """The outcome of a CSV import: valid rows are kept, the others are listed by line."""

    imported: int = Field(description="Clients created.", examples=[998])
    failed: int = Field(
        description="Rows rejected (all of them, even past the list).", examples=[2]
    )
    errors: list[RowError] = Field(description="Rejected rows in line order, up to a cap.")
    errors_truncated: bool = Field(
        description="True when more rows failed than `errors` lists.", examples=[False]
    )
