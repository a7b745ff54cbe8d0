"""Reading gateway answers: Retry-After in both forms, and the caps on strings from outside."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sms_sender.providers import Outcome, SendResult
from sms_sender.providers._answers import (
    MAX_ERROR_CHARS,
    MAX_RETRY_AFTER_SECONDS,
    accepted,
    capped,
    retry_after,
)

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Tue, 01 Dec 2026 12:00:30 GMT", 30.0),
        ("Tue, 01 Dec 2026 11:00:00 GMT", 0.0),  # a date already past: try again now
        ("999999", MAX_RETRY_AFTER_SECONDS),  # a day or more away: capped
        ("soon", None),
        ("-5", None),
        ("", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(value: str, seconds: float | None) -> None:
    assert retry_after({"Retry-After": value}, now=NOW) == seconds


def test_no_retry_after_header_is_none() -> None:
    assert retry_after({}, now=NOW) is None


def test_an_id_that_fits_is_kept_as_text() -> None:
    assert accepted(539820423) == SendResult.accepted("539820423")
    assert accepted("x" * 128) == SendResult.accepted("x" * 128)
    assert accepted(None) == SendResult.accepted(None)
    assert accepted(True) == SendResult.accepted(None)  # JSON true is not an id


def test_an_id_too_long_for_the_column_is_an_unknown_outcome_not_a_cut_id() -> None:
    result = accepted("7" * 129)

    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None
    assert result.error.startswith("the gateway returned an id of 129 characters")


def test_errors_are_cut_to_the_column() -> None:
    assert len(capped("e" * 5000)) == MAX_ERROR_CHARS
    assert capped("short") == "short"
