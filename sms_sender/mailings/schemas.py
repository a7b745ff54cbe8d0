"""The mailing as the API sees it: what a user sends to create or edit one, and what comes back."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from sms_sender import reasons
from sms_sender.clients.schemas import TagText
from sms_sender.consent.rules import MailingPurpose
from sms_sender.db import MAX_ID
from sms_sender.mailings.models import MailingStatus
from sms_sender.reports.schemas import ReportCounts
from sms_sender.timestamps import UtcDatetime

_OPERATOR_CODE = re.compile(r"[0-9]{3}")
_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def _json_integer(value: Any) -> Any:
    # JSON Schema's integer: 7 or 7.0, but not "7" or true, which pydantic would also take.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise reasons.NOT_AN_INTEGER.invalid()
    return value


def _shown(value: str) -> str:
    """The value quoted for an error message, cut short so a huge input makes a short message."""
    return repr(value if len(value) <= 20 else value[:20] + "…")


def _operator_code(value: str) -> str:
    if not _OPERATOR_CODE.fullmatch(value):
        raise reasons.FILTER_OPERATOR_CODE.invalid(got=_shown(value))
    return value


def _time_of_day(value: str) -> str:
    if not _TIME_OF_DAY.fullmatch(value):
        raise reasons.TIME_OF_DAY.invalid(got=_shown(value))
    return value


def _without_repeats(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


OperatorCode = Annotated[
    str,
    AfterValidator(_operator_code),
    Field(json_schema_extra={"pattern": "^[0-9]{3}$"}, examples=["916"]),
]
# A filter's tag is a client's tag (one rule: sms_sender.clients.schemas.TagText), never empty.
FilterTag = Annotated[TagText, Field(min_length=1, examples=["vip"])]
TimeOfDay = Annotated[
    str,
    AfterValidator(_time_of_day),
    Field(json_schema_extra={"pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}, examples=["09:00"]),
]
MessageId = Annotated[
    int,
    BeforeValidator(_json_integer),
    Field(ge=1, le=MAX_ID, description="Id of a message text."),
]


def minutes_to_time(minutes: int) -> str:
    """The "HH:MM" of a number of minutes after midnight: 720 -> "12:00"."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def time_to_minutes(time_of_day: str) -> int:
    """Minutes after midnight of an "HH:MM" time: "12:00" -> 720."""
    hours, minutes = time_of_day.split(":")
    return int(hours) * 60 + int(minutes)


class MailingFilter(BaseModel):
    """Which clients get the mailing: AND across fields, OR within one; empty matches everyone."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"operator_codes": ["916", "926"], "tags": ["vip"]}]},
    )

    operator_codes: Annotated[list[OperatorCode], AfterValidator(_without_repeats)] = Field(
        default_factory=list,
        max_length=1000,
        description="Clients with any of these operator codes; empty or missing: any code.",
    )
    tags: Annotated[list[FilterTag], AfterValidator(_without_repeats)] = Field(
        default_factory=list,
        max_length=1000,
        description="Clients with any of these tags; empty or missing: any tag (or none).",
    )


class SendWindow(BaseModel):
    """Time of day, in each client's own time zone, in which sending is allowed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"start": "09:00", "end": "21:00"}]},
    )

    start: TimeOfDay = Field(description="Sending may begin at this local time.")
    end: TimeOfDay = Field(
        description="Sending stops at this local time; earlier than start means the window "
        "wraps midnight (22:00-06:00)."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise reasons.SEND_WINDOW_EMPTY.invalid()
        return self

    @classmethod
    def from_minutes(cls, start: int | None, end: int | None) -> SendWindow | None:
        if start is None or end is None:
            return None
        return cls(start=minutes_to_time(start), end=minutes_to_time(end))


_PURPOSE_DESCRIPTION = (
    "`service` (transactional: an order status, a code) goes to every matching client who has "
    "not opted out; `advertising` only to those who also gave consent. Excluded clients get a "
    "`skipped` report whose error says why (`opted_out`, `no_consent`)."
)

_CREATE_EXAMPLE: dict[str, Any] = {
    "purpose": "advertising",
    "start_at": "2030-01-15T09:00:00+03:00",
    "end_at": "2030-01-15T21:00:00+03:00",
    "message_id": 1,
    "filter": {"operator_codes": ["916"], "tags": ["vip"]},
    "send_window": {"start": "09:00", "end": "20:00"},
}


class MailingCreate(BaseModel):
    """A new mailing; it starts at once when [start_at, end_at) contains now."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_CREATE_EXAMPLE]})

    start_at: UtcDatetime = Field(
        description="When sending starts, with an offset or Z. In the past or now: at once."
    )
    end_at: UtcDatetime = Field(
        description="When sending stops (after start_at, in the future): nothing is sent at or "
        "after it and what is still unsent expires."
    )
    message_id: MessageId
    filter: MailingFilter = Field(
        description="Which clients get it; `{}` sends to every client in the directory."
    )
    send_window: SendWindow | None = Field(
        default=None, description="Local time of day for sending; null or missing: any time."
    )
    purpose: MailingPurpose = Field(
        default=MailingPurpose.SERVICE,
        description=f"{_PURPOSE_DESCRIPTION} Missing: `service`.",
    )


class MailingPreviewRequest(BaseModel):
    """A filter and a purpose, to see whom a mailing would reach before creating it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"filter": {"tags": ["vip"]}, "purpose": "advertising"}]},
    )

    filter: MailingFilter = Field(
        default_factory=MailingFilter, description="As in a mailing; `{}` or missing: everyone."
    )
    purpose: MailingPurpose = Field(
        default=MailingPurpose.SERVICE, description=f"{_PURPOSE_DESCRIPTION} Missing: `service`."
    )


class SkippedCounts(BaseModel):
    """Matching clients a mailing would skip, by reason."""

    no_consent: int = Field(description="Advertising only: no consent given.", examples=[180])
    opted_out: int = Field(description="The client asked to receive nothing.", examples=[12])


class MailingPreview(BaseModel):
    """Whom a mailing with this filter and purpose would reach if it started now."""

    matching: int = Field(description="Clients the filter matches.", examples=[1200])
    will_send: int = Field(
        description="Of them, clients who would get the message.", examples=[1008]
    )
    skipped: SkippedCounts = Field(description="Of them, clients who would be skipped, and why.")


def _not_nullable(schema: dict[str, Any]) -> None:
    """Document a field that may be left out but not sent as null (see ``_not_null``)."""
    options = [option for option in schema.pop("anyOf") if option.get("type") != "null"]
    schema.update(options[0])
    schema.pop("default", None)


class MailingUpdate(BaseModel):
    """Only the fields sent change. A running or paused mailing takes end_at and send_window."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "end_at": "2030-01-16T21:00:00Z",
                    "send_window": {"start": "09:00", "end": "20:00"},
                }
            ]
        },
    )

    start_at: UtcDatetime | None = Field(
        default=None, description="Scheduled mailings only.", json_schema_extra=_not_nullable
    )
    end_at: UtcDatetime | None = Field(
        default=None,
        description="A new end, after start_at and in the future.",
        json_schema_extra=_not_nullable,
    )
    message_id: MessageId | None = Field(
        default=None, description="Scheduled mailings only.", json_schema_extra=_not_nullable
    )
    filter: MailingFilter | None = Field(
        default=None,
        description="Replaces the whole filter; scheduled mailings only.",
        json_schema_extra=_not_nullable,
    )
    send_window: SendWindow | None = Field(
        default=None, description="A new window, or null to send at any time."
    )
    purpose: MailingPurpose | None = Field(
        default=None, description="Scheduled mailings only.", json_schema_extra=_not_nullable
    )

    @field_validator("start_at", "end_at", "message_id", "filter", "purpose", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Only send_window can be removed; for the others null would mean nothing sensible.
        if value is None:
            raise reasons.NOT_NULL.invalid()
        return value


class MailingRead(BaseModel):
    """A mailing, its status and how many of its reports are in each status."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _CREATE_EXAMPLE
                | {
                    "id": 7,
                    "start_at": "2030-01-15T06:00:00Z",
                    "end_at": "2030-01-15T18:00:00Z",
                    "status": "running",
                    "paused_reason": None,
                    "created_at": "2030-01-14T10:00:00Z",
                    "updated_at": "2030-01-15T06:00:00Z",
                    "started_at": "2030-01-15T06:00:00Z",
                    "finished_at": None,
                    "counts": ReportCounts.of({"pending": 1, "sent": 1, "delivered": 1}).model_dump(
                        mode="json"
                    ),
                }
            ]
        }
    )

    id: int
    start_at: datetime
    end_at: datetime
    message_id: int
    filter: MailingFilter
    send_window: SendWindow | None
    purpose: MailingPurpose = Field(description=_PURPOSE_DESCRIPTION)
    status: MailingStatus = Field(
        description="scheduled (before start_at), running, paused, finished (every report "
        "final, or end_at passed) or cancelled."
    )
    paused_reason: str | None = Field(
        default=None,
        description="Why the engine paused it (e.g. the provider's account ran out of funds); "
        "null when it is not paused or a user paused it. Resume it once the cause is fixed.",
        examples=[None],
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = Field(description="When its reports were created.")
    finished_at: datetime | None = Field(description="When it finished or was cancelled.")
    counts: ReportCounts = Field(description="Its reports, in total and by status.")


class Requeued(BaseModel):
    """How many reports ``POST /api/v1/mailings/{id}/resend-unknown`` queued again."""

    requeued: int = Field(description="Reports moved from unknown back to pending.", examples=[3])


class MailingStats(ReportCounts):
    """The reports of one mailing by status (``GET /api/v1/mailings/{id}/stats``)."""

    mailing_id: int = Field(examples=[7])


class MailingStatsDetail(MailingStats):
    """One mailing's reports by status, and its skipped ones by reason."""

    skipped_by_reason: dict[str, int] = Field(
        description="Skipped reports by reason: `opted_out` (the client asked to receive "
        "nothing), `no_consent` (advertising to a client without consent). Reasons with no "
        "report are left out.",
        examples=[{"no_consent": 180, "opted_out": 12}],
    )


class MailingStatsLine(MailingStats):
    """One mailing's line in the overall statistics."""

    status: MailingStatus = Field(description="The mailing's own status.", examples=["running"])


class OverallStats(ReportCounts):
    """Reports of every mailing by status, and the same per mailing (``GET /api/v1/stats``)."""

    mailings: list[MailingStatsLine] = Field(
        description="Every mailing, by id, including those without reports yet."
    )
