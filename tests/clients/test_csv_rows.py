"""The CSV import's fast check of a row against the JSON API's model: same verdicts, same values.

``csv_import.parse_lines`` takes most rows without building a ``ClientCreate``; these tests
feed it every combination of valid and invalid cells and compare each line's outcome (row,
consent, or error message) with :func:`csv_import.parse_line`, which validates through the
model, so the two can never drift apart.
"""

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from sms_sender.clients import csv_import
from sms_sender.clients.schemas import ClientCreate, surely_accepted

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEFAULT_ZONE = "Europe/Moscow"
ARABIC_INDIC = "".join(chr(0x0660 + digit) for digit in range(10))

PHONES = [
    "79001234567",
    " 79161234567 ",
    "",
    "7900123456",  # 10 digits
    "790012345678",  # 12 digits
    "89001234567",
    "7900123456a",
    "+79001234567",
    "7" + ARABIC_INDIC,
    "\uff17" + "9001234567",  # a full-width 7
    "7900\u00a01234567",  # a no-break space inside
]
OPERATOR_CODES = ["", "900", " 916 ", "90", "9000", "abc", ARABIC_INDIC[:3], "9 0"]
TAGS = [
    "",
    "vip",
    " spaced out ",
    "x" * 64,
    "x" * 65,
    "é" * 64,  # 64 characters, 128 bytes
    "é" * 65,
    "tab\tinside",
    "del\x7f",
    "bell\x07",
    "ünï cödé 日本",
]
TIMEZONES = [
    "",
    "UTC",
    " Asia/Tokyo ",
    "Europe/Moscow",
    "Mars/Olympus",
    "utc",
    "localtime",
    "Factory",
]


Outcome = tuple[int, tuple[Any, ...] | str]  # line number, and the row or the error


def _reference(number: int, line: str, columns: tuple[str, ...]) -> Outcome | None:
    """One line through the model: ``(number, row and consent)``, ``(number, error)`` or None."""
    if not line.strip():
        return None
    try:
        fields, consent = csv_import.parse_line(line, DEFAULT_ZONE, columns, NOW)
    except Exception as rejected:  # _RowRejected: private; its message is what is compared
        return number, str(rejected)
    return number, (fields.phone, fields.operator_code, fields.tag, fields.timezone, consent)


def _fast(lines: list[str], columns: tuple[str, ...], first_number: int = 2) -> list[Outcome]:
    """The lines through parse_lines, as _reference gives them (each line with its consent)."""
    parsed = csv_import.parse_lines(first_number, lines, columns, DEFAULT_ZONE, NOW)
    outcomes: list[Outcome] = [
        (number, (*row, parsed.consents.get(number)))
        for number, row in zip(parsed.numbers, parsed.rows, strict=True)
    ]
    outcomes += [(error.line, error.error) for error in parsed.errors]
    return sorted(outcomes, key=lambda outcome: outcome[0])


def _expected(lines: list[str], columns: tuple[str, ...], first_number: int = 2) -> list[Outcome]:
    outcomes = [
        _reference(number, line.rstrip("\r\n"), columns)
        for number, line in enumerate(lines, first_number)
    ]
    return [outcome for outcome in outcomes if outcome is not None]


def test_every_combination_of_cells_gets_the_models_verdict_and_message() -> None:
    lines = [
        ",".join(cells) for cells in itertools.product(PHONES, OPERATOR_CODES, TAGS, TIMEZONES)
    ]
    assert _fast(lines, csv_import.HEADER) == _expected(lines, csv_import.HEADER)


def test_the_fast_check_takes_every_valid_plain_row() -> None:
    """Not a rule but the point of the fast path: a valid row never needs the model."""
    taken = 0
    for phone, code, tag, zone in itertools.product(PHONES, OPERATOR_CODES, TAGS, TIMEZONES):
        cells = {"phone": phone.strip(), "operator_code": code.strip(), "tag": tag.strip()}
        cells["timezone"] = zone.strip()
        try:
            ClientCreate.model_validate({name: value or None for name, value in cells.items()})
        except ValueError:
            assert not surely_accepted(*cells.values()), cells
            continue
        assert surely_accepted(*cells.values()), cells
        taken += 1
    assert taken > 100


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "\r",
        ",,,",
        "79001234567,,,\r",  # a CRLF file's line
        "79001234567,,,,",
        "79001234567,,",
        '"79001234567",,,',
        '79001234567,,"a, b",UTC',
        '79001234567,,"unterminated,',
        '79001234567,,say ""hi"",',
        "79001234567 ,900,vip, UTC",
        "79001234567;900;vip;UTC",
        "7" * 5000 + ",,,",  # a huge phone
        "79001234567,,x\x00y,",
    ],
)
def test_odd_lines_get_the_models_verdict_and_message(line: str) -> None:
    assert _fast([line], csv_import.HEADER) == _expected([line], csv_import.HEADER)


CONSENT_CELLS = [
    ("", ""),
    (" ", " "),
    ("2026-11-30T10:15:00+03:00", "web form"),
    ("2026-11-30T10:15:00+03:00", ""),
    ("", "web form"),
    ("2027-01-01T00:00:00+00:00", "web form"),  # in the future
    ("2026-11-30 10:15", "shop"),  # no offset
    ("yesterday", "shop"),
]


def test_rows_with_consent_columns_get_the_models_verdict_and_message() -> None:
    columns = csv_import.HEADER_WITH_CONSENT
    lines = [
        ",".join((phone, code, "", zone, at, source))
        for phone, code, zone, (at, source) in itertools.product(
            PHONES[:4], OPERATOR_CODES[:3], TIMEZONES[:5], CONSENT_CELLS
        )
    ]
    assert _fast(lines, columns) == _expected(lines, columns)
    assert _fast(["79001234567,,,"], columns) == _expected(["79001234567,,,"], columns)


def test_line_numbers_count_from_the_first_and_include_blank_lines() -> None:
    lines = ["79001234567,,,", "", "bad,,,", "79161234567,,,"]
    outcomes = _fast(lines, csv_import.HEADER, first_number=1001)
    assert [number for number, _ in outcomes] == [1001, 1003, 1004]
    assert outcomes == _expected(lines, csv_import.HEADER, first_number=1001)
