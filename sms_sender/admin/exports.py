"""CSV downloads of the console, safe to open in a spreadsheet.

A cell starting with = + - @ (or a tab or carriage return) would be read as a formula by
Excel or LibreOffice, so it is prefixed with an apostrophe (OWASP's CSV injection advice);
the apostrophe shows, nothing runs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

BATCH = 1000
REPORT_COLUMNS = (
    "id",
    "mailing_id",
    "client_id",
    "phone",
    "status",
    "attempts",
    "created_at",
    "sent_at",
    "provider",
    "provider_message_id",
    "error",
    "text",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_line(cells: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([safe_cell(cell) for cell in cells])
    return buffer.getvalue()


def report_line(report: Row[Any]) -> str:
    return csv_line([getattr(report, column) for column in REPORT_COLUMNS])
