"""A stop list: a CSV of phones to opt out, streamed and applied a batch at a time."""

from __future__ import annotations

from datetime import datetime

from fastapi import Query, Request
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import reasons
from sms_sender.consent import service
from sms_sender.consent.rules import PhoneHasher
from sms_sender.consent.schemas import StopListResult
from sms_sender.errors import InvalidInput, UnsupportedMediaType, shown
from sms_sender.phones import Phone
from sms_sender.text_lines import read_lines

BATCH_PHONES = 1000
MAX_REPORTED_ERRORS = 1000
_PHONE: TypeAdapter[str] = TypeAdapter(Phone)
SourceQuery = Query(
    min_length=1,
    max_length=200,
    description="Where the stop list came from, kept in each client's consent history.",
)


async def import_stop_list(
    session: AsyncSession,
    request: Request,
    *,
    source: str,
    actor: str,
    hasher: PhoneHasher,
    now: datetime,
) -> StopListResult:
    """Opt out every phone of a text/csv body with the header ``phone``; flush only."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not media_type:
        raise UnsupportedMediaType.because(reasons.STOP_LIST_NO_MEDIA_TYPE)
    if media_type != "text/csv":
        raise UnsupportedMediaType.because(reasons.STOP_LIST_MEDIA_TYPE, media_type=media_type)
    lines = read_lines(request.stream())
    header = await anext(lines, None)
    if header is None or header.removeprefix("\ufeff").strip().strip('"').lower() != "phone":
        raise InvalidInput.field(
            ["body", "header"], reasons.STOP_LIST_HEADER, got=shown(header or "", 100)
        )
    phones: list[str] = []
    result = StopListResult(phones=0, clients=0, errors=[])
    errors = result.errors
    number = 1
    async for line in lines:
        number += 1
        cell = line.strip().strip('"')
        if not cell:
            continue
        try:
            phones.append(_PHONE.validate_python(cell))
        except ValidationError as invalid:
            if len(errors) < MAX_REPORTED_ERRORS:
                message = invalid.errors()[0]["msg"].removeprefix("Value error, ")
                errors.append({"line": number, "error": f"phone {message}"})
        if len(phones) >= BATCH_PHONES:
            await _apply(
                session, phones, result, source=source, actor=actor, hasher=hasher, now=now
            )
    await _apply(session, phones, result, source=source, actor=actor, hasher=hasher, now=now)
    return result


async def _apply(
    session: AsyncSession,
    phones: list[str],
    result: StopListResult,
    *,
    source: str,
    actor: str,
    hasher: PhoneHasher,
    now: datetime,
) -> None:
    if not phones:
        return
    unique = list(dict.fromkeys(phones))
    before = await service.opt_out_phones(
        session, unique, source=source, actor=actor, hasher=hasher, now=now
    )
    result.phones += len(unique)
    result.clients += sum(1 for client_id in before.values() if client_id is not None)
    phones.clear()
