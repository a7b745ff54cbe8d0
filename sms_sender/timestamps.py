"""The API's one type for a point in time: ISO 8601 text with an offset, kept in UTC.

A naive time is refused (pydantic's "timezone_aware" error, which sms_sender/problems.py turns
into a sentence), and so is a number: pydantic would otherwise take it as seconds since 1970,
which is not what the API documents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from sms_sender import reasons


def _iso_text(value: Any) -> Any:
    if not isinstance(value, str | datetime):
        raise reasons.DATETIME_NOT_TEXT.invalid()
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 has no UTC representation
        raise reasons.DATETIME_OUT_OF_RANGE.invalid() from None


UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_to_utc)]
