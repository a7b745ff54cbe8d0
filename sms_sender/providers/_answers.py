"""Reading gateway answers: reasons, Retry-After, and caps on every string from outside.

Shared by the HTTP providers. Whatever a gateway sends ends up in a report's columns, so it is
cut to fit here: an error to ``MAX_ERROR_CHARS`` (the column holds 1,000), a reason excerpt to
``EXCERPT_CHARS``. A message id longer than ``MAX_MESSAGE_ID_CHARS`` (the column holds 128) is
not cut: a cut id names another message (or none), so such an answer is not a clear acceptance
and :func:`accepted` makes it ``unknown``, with the length in the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

import orjson

from sms_sender.providers.base import SendResult

MAX_ERROR_CHARS = 1000
MAX_MESSAGE_ID_CHARS = 128
EXCERPT_CHARS = 200
# A Retry-After further away than this is read as this: the engine still tries again today.
MAX_RETRY_AFTER_SECONDS = 3600.0

# Where JSON error bodies usually put a sentence a person can read.
_REASON_KEYS = ("message", "error", "detail", "reason", "description")


def accepted(message_id: object) -> SendResult:
    """Accepted with the gateway's id (a string or a number), if it fits the report's column."""
    if isinstance(message_id, bool) or not isinstance(message_id, int | str):
        return SendResult.accepted(None)
    text = str(message_id)
    if len(text) > MAX_MESSAGE_ID_CHARS:
        return SendResult.unknown(
            f"the gateway returned an id of {len(text)} characters "
            f"(at most {MAX_MESSAGE_ID_CHARS} are kept); it may have the message"
        )
    return SendResult.accepted(text or None)


def capped(error: str) -> str:
    """An error cut to the report's column."""
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP-date), or None."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # HTTP-dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None if it is anything else."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:  # not JSON, or not valid UTF-8
        return None
    return answer if isinstance(answer, dict) else None


def answer_reason(status: int, body: bytes) -> str:
    """The most readable explanation an error answer carries."""
    answer = json_object(body)
    if answer is not None:
        for key in _REASON_KEYS:
            value = answer.get(key)
            if isinstance(value, str) and value.strip():
                return excerpt(value)
    return body_excerpt(body) or status_phrase(status)


def body_excerpt(body: bytes) -> str:
    """The start of the body on one line, short enough for a report's error column."""
    return excerpt(body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace"))


def excerpt(text: str) -> str:
    one_line = " ".join(text.split())
    if len(one_line) <= EXCERPT_CHARS:
        return one_line
    return one_line[: EXCERPT_CHARS - 1] + "…"


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "no reason given"
