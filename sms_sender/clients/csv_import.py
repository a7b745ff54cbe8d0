"""Bulk import of clients from CSV, streamed: memory stays flat whatever the size of the file.

The bytes are split into lines a chunk at a time as they are read
(``text_lines.read_line_batches``); each line is checked on its own (:func:`parse_lines`) and
the valid rows are inserted a batch at a time, one statement per batch, skipping phones
already taken (:func:`import_clients`). A record is one line: quoted cells may hold
commas but not line breaks, which no valid client field contains. The API reads from the
complete upload (``clients/upload.py``), checks the whole file first (:func:`check_lines`) and
commits batch by batch; the CLI imports in one transaction.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.service import record
from sms_sender.clients import repository
from sms_sender.clients.repository import NewClient
from sms_sender.clients.schemas import ClientCreate, ImportResult, RowError, surely_accepted
from sms_sender.clients.service import (
    ClientFields,
    default_operator_code,
    given_consent,
    with_defaults,
)
from sms_sender.consent.rules import PhoneHasher
from sms_sender.consent.service import GivenConsent, record_imported_consents, suppress_new_clients
from sms_sender.errors import InvalidInput, shown
from sms_sender.text_lines import each

HEADER = ("phone", "operator_code", "tag", "timezone")
# Optional: a file may also say when and where each client agreed to advertising.
HEADER_WITH_CONSENT = (*HEADER, "consent_at", "consent_source")
# Rows per INSERT, and per commit of the API's import. A commit has a fixed cost, mostly on
# SQLite (the pages every batch touches, the tops of four indexes and the counters, are written
# to the WAL again at each commit): 5,000 rather than 1,000 rows took a fifth off SQLite's CPU
# per row, and nothing measurable on PostgreSQL. Bounded by SQLite's writer turn: one batch is
# one turn, 20-25 ms of SQLite's work at 5,000 rows, which a POST /clients may wait for.
BATCH_ROWS = 5000
# Lines checked between two turns of the event loop while a batch is read: each turn lets the
# batch in flight send its next statement (SQLite: about nine a batch, from dropping the
# counting trigger to COMMIT), so the database works while the next batch is checked instead of
# waiting for the whole check (20-25 ms at 5,000 rows).
CHECK_SLICE_ROWS = 500
MAX_REPORTED_ERRORS = 1000


# Lines as they are read: lists of lines, each without or with its line break (a file's
# chunks from text_lines.read_line_batches, or one list of a CSV made in memory).
LineBatches = AsyncIterable[list[str]] | Iterable[list[str]]


async def check_lines(lines: LineBatches) -> None:
    """Read a whole file once, writing nothing: InvalidInput for a bad header, byte or line.

    Run before an import that commits batch by batch, so a broken file changes nothing.
    """
    batches = _numbered_batches(lines)
    _check_header(await _header(batches))
    async for _ in batches:
        pass


async def import_clients(
    session: AsyncSession,
    lines: LineBatches,
    *,
    default_timezone: str,
    hasher: PhoneHasher,
    now: datetime,
    after_each_batch: Callable[[], Awaitable[None]] | None = None,
) -> ImportResult:
    """Add the clients of a CSV given as lists of lines (with or without line breaks); flush only.

    A phone on the suppression list comes in opted out (sms_sender.consent).

    The first line must be the header ``phone,operator_code,tag,timezone``, optionally
    followed by ``consent_at,consent_source`` (InvalidInput otherwise, before anything is
    written). Blank lines are skipped; every other line is a
    client or an error in the result, by line number. The caller commits: at the end, or after
    each batch through ``after_each_batch`` (the API passes its unit of work's commit, so an
    import of any size never holds one long transaction).
    """
    batches = _numbered_batches(lines)
    columns = _check_header(await _header(batches))
    outcome = _Outcome()
    # The database stores one batch while the next is read and validated: two cores at work.
    # One statement at a time on the session, so each insert waits for the one before.
    inserting: asyncio.Task[None] | None = None
    try:
        async for first_number, batch_lines in batches:
            parsed = await _parse_in_slices(
                first_number, batch_lines, columns, default_timezone, now
            )
            batch = _Batch(session, after_each_batch, parsed, hasher=hasher, now=now)
            if inserting is not None:
                await inserting
            inserting = asyncio.create_task(batch.insert(outcome))
            await asyncio.sleep(0)  # the insert goes out now, not when the body next waits
        if inserting is not None:
            await inserting
        result = outcome.result()
        await record(
            session,
            AuditAction.IMPORTED,
            AuditTarget.CLIENT,
            None,
            f"{result.imported} clients imported, {result.failed} rows rejected",
        )
    finally:
        # A bad line or a lost upload ends the import early: the insert in flight (one batch)
        # finishes before the caller rolls back, and its own error, if any, is not left unread.
        # Not cancelled: a driver interrupted mid-statement may leave its connection unusable.
        if inserting is not None:
            await asyncio.wait([inserting])
            if not inserting.cancelled():
                inserting.exception()
    return result


class _RowRejected(Exception):
    """A line that cannot become a client; the message says why."""


@dataclass
class ParsedLines:
    """Lines checked: the rows to insert with their line numbers, the consents, the errors."""

    numbers: list[int] = field(default_factory=list)
    rows: list[NewClient] = field(default_factory=list)
    consents: dict[int, GivenConsent] = field(default_factory=dict)  # by line number
    errors: list[RowError] = field(default_factory=list)


def parse_lines(
    first_number: int,
    lines: list[str],
    columns: tuple[str, ...],
    default_timezone: str,
    now: datetime,
    parsed: ParsedLines | None = None,
) -> ParsedLines:
    """Lines numbered from ``first_number``, each a row or an error by :func:`parse_line`'s rules.

    Added to ``parsed`` when given. Blank lines are skipped. The common line, unquoted and
    without a consent, is checked by ``surely_accepted`` instead of a model per row (a third of
    an import's CPU); any other line, and any line that check does not accept, goes through
    :func:`parse_line` for its verdict and its message. tests/clients/test_csv_rows.py holds
    the two paths to the same results.
    """
    if parsed is None:
        parsed = ParsedLines()
    numbers, rows = parsed.numbers, parsed.rows
    width = len(columns)
    with_consent = width > len(HEADER)
    for number, line in enumerate(lines, first_number):
        cells = line.split(",")
        if len(cells) == width and '"' not in line:
            phone, code, tag, zone = (
                cells[0].strip(),
                cells[1].strip(),
                cells[2].strip(),
                cells[3].strip(),
            )
            if surely_accepted(phone, code, tag, zone) and not (
                with_consent and (cells[4].strip() or cells[5].strip())
            ):
                numbers.append(number)
                rows.append(
                    (
                        phone,
                        code or default_operator_code(phone),
                        tag or None,
                        zone or default_timezone,
                    )
                )
                continue
        _parse_slowly(parsed, number, line.rstrip("\r\n"), columns, default_timezone, now)
    return parsed


async def _parse_in_slices(
    first_number: int,
    lines: list[str],
    columns: tuple[str, ...],
    default_timezone: str,
    now: datetime,
) -> ParsedLines:
    """:func:`parse_lines`, CHECK_SLICE_ROWS lines at a time, the event loop turning between."""
    parsed = ParsedLines()
    for start in range(0, len(lines), CHECK_SLICE_ROWS):
        parse_lines(
            first_number + start,
            lines[start : start + CHECK_SLICE_ROWS],
            columns,
            default_timezone,
            now,
            parsed,
        )
        await asyncio.sleep(0)
    return parsed


def _parse_slowly(
    parsed: ParsedLines,
    number: int,
    line: str,
    columns: tuple[str, ...],
    default_timezone: str,
    now: datetime,
) -> None:
    if not line.strip():
        return
    try:
        fields, consent = parse_line(line, default_timezone, columns, now)
    except _RowRejected as rejected:
        parsed.errors.append(RowError(line=number, error=str(rejected)))
        return
    parsed.numbers.append(number)
    parsed.rows.append((fields.phone, fields.operator_code, fields.tag, fields.timezone))
    if consent is not None:
        parsed.consents[number] = consent


class _Batch:
    """Up to BATCH_ROWS consecutive lines, checked: the rows to insert and the lines rejected."""

    def __init__(
        self,
        session: AsyncSession,
        after_insert: Callable[[], Awaitable[None]] | None,
        parsed: ParsedLines,
        *,
        hasher: PhoneHasher,
        now: datetime,
    ) -> None:
        self._session = session
        self._after_insert = after_insert
        self._hasher = hasher
        self._now = now
        self._numbers = parsed.numbers
        self._rows = parsed.rows
        self._consents = parsed.consents
        self._errors = parsed.errors
        self._first_line: dict[str, int] = {}  # phone -> its first line in the batch

    async def insert(self, outcome: _Outcome) -> None:
        """Insert the batch's new phones in one statement and hand its results to ``outcome``."""
        unique = self._first_of_each_phone()
        taken = await repository.insert_new(self._session, unique, self._now)
        inserted = [row[0] for row in unique if row[0] not in taken]
        await suppress_new_clients(self._session, inserted, hasher=self._hasher, now=self._now)
        # The consent of the line that made the client: a later line with its phone is rejected
        # and, like any rejected line, changes nothing.
        consents = (
            [
                (phone, self._consents[line])
                for phone in inserted
                if (line := self._first_line[phone]) in self._consents
            ]
            if self._consents
            else []
        )
        await record_imported_consents(self._session, consents, hasher=self._hasher, now=self._now)
        if self._after_insert is not None:
            await self._after_insert()
        if taken:
            for number, row in zip(self._numbers, self._rows, strict=True):
                if row[0] in taken and self._first_line.get(row[0]) == number:
                    self._reject(
                        number,
                        f"phone {row[0]} already belongs to a client "
                        "(in the directory or on an earlier line of this file)",
                    )
        outcome.add(imported=len(inserted), errors=sorted(self._errors, key=lambda e: e.line))

    def _first_of_each_phone(self) -> list[NewClient]:
        """The rows to insert: each phone's first; a later line with the same phone is rejected."""
        self._first_line = dict(
            zip((row[0] for row in reversed(self._rows)), reversed(self._numbers), strict=True)
        )
        if len(self._first_line) == len(self._rows):
            return self._rows
        unique = []
        for number, row in zip(self._numbers, self._rows, strict=True):
            first = self._first_line[row[0]]
            if first == number:
                unique.append(row)
            else:
                self._reject(number, f"phone {row[0]} is already on line {first}")
        return unique

    def _reject(self, number: int, error: str) -> None:
        self._errors.append(RowError(line=number, error=error))


class _Outcome:
    """Running totals; keeps the first MAX_REPORTED_ERRORS errors and counts the rest."""

    def __init__(self) -> None:
        self.imported = 0
        self.failed = 0
        self.errors: list[RowError] = []

    def add(self, *, imported: int, errors: list[RowError]) -> None:
        self.imported += imported
        self.failed += len(errors)
        room = MAX_REPORTED_ERRORS - len(self.errors)
        self.errors.extend(errors[:room])

    def result(self) -> ImportResult:
        return ImportResult(
            imported=self.imported,
            failed=self.failed,
            errors=self.errors,
            errors_truncated=self.failed > len(self.errors),
        )


def parse_line(
    line: str, default_timezone: str, columns: tuple[str, ...], now: datetime
) -> tuple[ClientFields, GivenConsent | None]:
    """One CSV line to a client's values and consent, by the same rules as the JSON API."""
    cells = _cells(line)
    if len(cells) != len(columns):
        raise _RowRejected(f"expected {len(columns)} cells ({','.join(columns)}), got {len(cells)}")
    values = dict(zip(columns, (cell.strip() or None for cell in cells), strict=True))
    if values["phone"] is None:
        raise _RowRejected("phone: is empty")
    try:
        payload = ClientCreate.model_validate(values)
    except ValidationError as invalid:
        raise _RowRejected(_describe(invalid)) from None
    consent = given_consent(payload)
    if consent is not None and consent.at > now:
        raise _RowRejected(f"consent_at: {consent.at.isoformat()} is in the future")
    return with_defaults(payload, default_timezone), consent


def _cells(line: str) -> list[str]:
    if '"' not in line:
        # What csv.reader would return for an unquoted line, without building a reader per line.
        return line.split(",")
    try:
        return next(csv.reader((line,), strict=True))
    except csv.Error as error:
        raise _RowRejected(f"not valid CSV: {error}") from None


def _describe(invalid: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: "
        f"{error['msg'].removeprefix('Value error, ')}"
        for error in invalid.errors()
    )


def _check_header(line: str | None) -> tuple[str, ...]:
    """The file's columns, from its first line: HEADER, or HEADER_WITH_CONSENT."""
    expected = ",".join(HEADER)
    if line is None:
        raise InvalidInput.field(["body"], f"the file is empty; its first line must be {expected}")
    cells = tuple(cell.strip().lower() for cell in _header_cells(line))
    if cells not in (HEADER, HEADER_WITH_CONSENT):
        raise InvalidInput.field(
            ["body", "header"],
            f"the first line must be the header {expected} (optionally followed by "
            f",consent_at,consent_source); got {shown(line, 100)}",
        )
    return cells


def _header_cells(line: str) -> list[str]:
    try:
        return _cells(line)
    except _RowRejected:
        return [line]


async def _header(batches: AsyncIterator[tuple[int, list[str]]]) -> str | None:
    """The first line, taken off the batches; None for an empty file."""
    first = await anext(batches, None)
    return None if first is None else first[1][0]


async def _numbered_batches(lines: LineBatches) -> AsyncIterator[tuple[int, list[str]]]:
    """The header alone, then the lines in lists of BATCH_ROWS, each with its first line's number.

    The header loses its line break and the BOM some editors write.
    """
    number = 1
    pending: list[str] = []
    async for received in each(lines):
        if number == 1:
            if not received:
                continue
            yield 1, [received[0].rstrip("\r\n").removeprefix("\ufeff")]
            number, received = 2, received[1:]
        pending += received
        while len(pending) >= BATCH_ROWS:
            yield number, pending[:BATCH_ROWS]
            number += BATCH_ROWS
            del pending[:BATCH_ROWS]
    if pending:
        yield number, pending
