"""Bulk import of clients from CSV, streamed: memory stays flat whatever the size of the file.

The bytes are split into lines as they are read (``text_lines.read_lines``); each line is checked on
its own and the valid rows are inserted a batch at a time, one statement per batch, skipping
phones already taken (:func:`import_clients`). A record is one line: quoted cells may hold
commas but not line breaks, which no valid client field contains. The API reads from the
complete upload (``clients/upload.py``), checks the whole file first (:func:`check_lines`) and
commits batch by batch; the CLI imports in one transaction.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.service import record
from sms_sender.clients import repository
from sms_sender.clients.schemas import ClientCreate, ImportResult, RowError
from sms_sender.clients.service import ClientFields, given_consent, with_defaults
from sms_sender.consent.rules import PhoneHasher
from sms_sender.consent.service import GivenConsent, record_imported_consents, suppress_new_clients
from sms_sender.errors import InvalidInput, shown
from sms_sender.text_lines import each

HEADER = ("phone", "operator_code", "tag", "timezone")
# Optional: a file may also say when and where each client agreed to advertising.
HEADER_WITH_CONSENT = (*HEADER, "consent_at", "consent_source")
# Rows per INSERT. Each statement binds one value per column whatever the count, so this only
# bounds the memory a batch holds and the work between two reads of the request body.
BATCH_ROWS = 1000
MAX_REPORTED_ERRORS = 1000


async def check_lines(lines: AsyncIterable[str]) -> None:
    """Read a whole file once, writing nothing: InvalidInput for a bad header, byte or line.

    Run before an import that commits batch by batch, so a broken file changes nothing.
    """
    numbered = _numbered(lines)
    first = await anext(numbered, None)
    _check_header(first[1] if first else None)
    async for _ in numbered:
        pass


async def import_clients(
    session: AsyncSession,
    lines: AsyncIterable[str] | Iterable[str],
    *,
    default_timezone: str,
    hasher: PhoneHasher,
    now: datetime,
    after_each_batch: Callable[[], Awaitable[None]] | None = None,
) -> ImportResult:
    """Add the clients of a CSV given line by line (with or without line breaks); flush only.

    A phone on the suppression list comes in opted out (sms_sender.consent).

    The first line must be the header ``phone,operator_code,tag,timezone``, optionally
    followed by ``consent_at,consent_source`` (InvalidInput otherwise, before anything is
    written). Blank lines are skipped; every other line is a
    client or an error in the result, by line number. The caller commits: at the end, or after
    each batch through ``after_each_batch`` (the API passes its unit of work's commit, so an
    import of any size never holds one long transaction).
    """
    numbered = _numbered(lines)
    first = await anext(numbered, None)
    columns = _check_header(first[1] if first else None)
    outcome = _Outcome()
    batch = _Batch(
        session,
        after_each_batch,
        columns=columns,
        default_timezone=default_timezone,
        hasher=hasher,
        now=now,
    )
    # The database stores one batch while the next is read and validated: two cores at work.
    # One statement at a time on the session, so each insert waits for the one before.
    inserting: asyncio.Task[None] | None = None
    try:
        async for number, line in numbered:
            if line.strip():
                batch.take(number, line)
            if batch.full:
                if inserting is not None:
                    await inserting
                inserting = asyncio.create_task(batch.insert(outcome))
                await asyncio.sleep(0)  # the insert goes out now, not when the body next waits
                batch = _Batch(
                    session,
                    after_each_batch,
                    columns=columns,
                    default_timezone=default_timezone,
                    hasher=hasher,
                    now=now,
                )
        if inserting is not None:
            await inserting
        await batch.insert(outcome)
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


class _Batch:
    """Up to BATCH_ROWS consecutive lines: the valid rows to insert and the lines rejected."""

    def __init__(
        self,
        session: AsyncSession,
        after_insert: Callable[[], Awaitable[None]] | None,
        *,
        columns: tuple[str, ...],
        default_timezone: str,
        hasher: PhoneHasher,
        now: datetime,
    ) -> None:
        self._session = session
        self._after_insert = after_insert
        self._columns = columns
        self._hasher = hasher
        self._consents: dict[str, GivenConsent] = {}
        self._default_timezone = default_timezone
        self._now = now
        self._rows: list[tuple[int, ClientFields]] = []
        self._errors: list[RowError] = []

    @property
    def full(self) -> bool:
        # Errors count too, so a file of bad lines cannot pile up an unbounded error list.
        return len(self._rows) + len(self._errors) >= BATCH_ROWS

    def take(self, number: int, line: str) -> None:
        try:
            fields, consent = parse_line(line, self._default_timezone, self._columns, self._now)
        except _RowRejected as rejected:
            self._errors.append(RowError(line=number, error=str(rejected)))
            return
        self._rows.append((number, fields))
        if consent is not None:
            self._consents.setdefault(fields.phone, consent)

    async def insert(self, outcome: _Outcome) -> None:
        """Insert the batch's new phones in one statement and hand its results to ``outcome``."""
        unique = self._first_of_each_phone()
        rows = [(row.phone, row.operator_code, row.tag, row.timezone) for _, row in unique]
        inserted = await repository.insert_new(self._session, rows, self._now)
        await suppress_new_clients(
            self._session, list(inserted), hasher=self._hasher, now=self._now
        )
        consents = [(phone, self._consents[phone]) for phone in inserted if phone in self._consents]
        await record_imported_consents(self._session, consents, hasher=self._hasher, now=self._now)
        if self._after_insert is not None:
            await self._after_insert()
        for number, fields in unique:
            if fields.phone not in inserted:
                self._reject(
                    number,
                    f"phone {fields.phone} already belongs to a client "
                    "(in the directory or on an earlier line of this file)",
                )
        outcome.add(imported=len(inserted), errors=sorted(self._errors, key=lambda e: e.line))
        self._rows.clear()
        self._errors.clear()
        self._consents.clear()

    def _first_of_each_phone(self) -> list[tuple[int, ClientFields]]:
        first_line: dict[str, int] = {}
        unique = []
        for number, fields in self._rows:
            first = first_line.setdefault(fields.phone, number)
            if first == number:
                unique.append((number, fields))
            else:
                self._reject(number, f"phone {fields.phone} is already on line {first}")
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


async def _numbered(lines: AsyncIterable[str] | Iterable[str]) -> AsyncIterator[tuple[int, str]]:
    """Lines numbered from 1, without line breaks, and without the BOM some editors write."""
    number = 0
    async for line in each(lines):
        number += 1
        text = line.rstrip("\r\n")
        yield number, text.removeprefix("\ufeff") if number == 1 else text
