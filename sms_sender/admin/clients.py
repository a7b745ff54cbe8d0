"""The client directory: search, pages, create / edit / delete, and CSV import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from sms_sender import reasons, text_lines
from sms_sender.admin.forms import blank_to_none, cursor_of, form_of, next_cursor_of, parse
from sms_sender.admin.pages import (
    PREFIX,
    ConsoleRoute,
    error_text,
    field_errors,
    is_zone,
    render,
    zone_of,
)
from sms_sender.auth.endpoints import CurrentUser, Operator
from sms_sender.clients import csv_import, service
from sms_sender.clients.models import Client
from sms_sender.clients.schemas import ClientCreate, ClientRead, ClientUpdate, ImportResult
from sms_sender.consent import service as consent_service
from sms_sender.consent.dependencies import PhoneHasherDep
from sms_sender.consent.schemas import ConsentEventRead, OptOutRequest
from sms_sender.errors import AppError, InvalidInput
from sms_sender.pagination import DEFAULT_LIMIT
from sms_sender.web import (
    CallerDep,
    ClockDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
)

router = APIRouter(prefix=f"{PREFIX}/clients", route_class=ConsoleRoute, include_in_schema=False)

# The CSV import's body may be as large as the API's (SMS_SENDER_MAX_IMPORT_BYTES; app.py).
IMPORT_PATH = f"{PREFIX}/clients/import"
SEARCH_FIELDS = ("phone_prefix", "tag", "operator_code", "timezone")
# How many of the newest consent changes the client page shows (the API pages through all).
HISTORY_SHOWN = 10
UPLOAD_CHUNK_BYTES = 64 * 1024


@router.get("", response_class=HTMLResponse)
async def list_clients(request: Request, user: CurrentUser, session: ReadSessionDep) -> Response:
    filters = {name: request.query_params.get(name, "").strip()[:64] for name in SEARCH_FIELDS}
    # In phone order the cursor is the last phone shown (digits, as an id is), else the last id.
    cursor = cursor_of(request)
    by_phone = service.search_in_phone_order(**filters)
    rows = await service.search(
        session,
        after_id=cursor,
        after_phone=str(cursor) if cursor else "",
        limit=DEFAULT_LIMIT,
        **filters,
    )
    return render(
        request,
        "clients.html",
        {
            "clients": [
                ClientRead.model_validate(row, from_attributes=True) for row in rows[:DEFAULT_LIMIT]
            ],
            "next_cursor": next_cursor_of([int(row.phone) if by_phone else row.id for row in rows]),
            "filters": filters,
            "facets": await service.facets(session),
        },
    )


@router.get("/new", response_class=HTMLResponse)
async def new_client(request: Request, user: Operator) -> Response:
    return render(request, "client_form.html", {"client": None, "values": {}, "errors": {}})


@router.post("/new", response_class=HTMLResponse)
async def create_client(
    request: Request,
    user: Operator,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
) -> Response:
    values = await form_of(request)
    try:
        payload = parse(ClientCreate, _client_fields(values))
        row = await service.create(
            session,
            payload,
            default_timezone=settings.default_timezone,
            hasher=hasher,
            actor=actor,
            now=clock.now(),
        )
    except AppError as error:
        await session.rollback()
        return _form_again(request, values, error)
    return RedirectResponse(f"{PREFIX}/clients/{row.id}?saved=1", status_code=303)


@router.post("/import")
async def import_clients(
    request: Request,
    user: Operator,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
) -> ImportResult:
    """The file from the page's upload (multipart field ``file``): same import as the API."""
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput.field(["file"], reasons.IMPORT_FILE_MISSING)
        return await csv_import.import_clients(
            session,
            text_lines.read_line_batches(_chunks_of(upload)),
            default_timezone=settings.default_timezone,
            hasher=hasher,
            now=clock.now(),
        )


@router.get("/{client_id}", response_class=HTMLResponse)
async def edit_client(
    request: Request, client_id: int, user: CurrentUser, session: ReadSessionDep
) -> Response:
    row = await service.get(session, client_id)
    return await _client_page(request, session, row)


@router.post("/{client_id}", response_class=HTMLResponse)
async def update_client(
    request: Request,
    client_id: int,
    user: Operator,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
) -> Response:
    values = await form_of(request)
    try:
        payload = parse(ClientCreate, _client_fields(values))
        await service.replace(
            session,
            client_id,
            payload,
            default_timezone=settings.default_timezone,
            hasher=hasher,
            actor=actor,
            now=clock.now(),
        )
    except AppError as error:
        await session.rollback()
        row = await service.get(session, client_id)
        return await _client_page(request, session, row, values=values, error=error)
    return RedirectResponse(f"{PREFIX}/clients/{client_id}?saved=1", status_code=303)


@router.post("/{client_id}/consent", response_class=HTMLResponse)
async def record_consent(
    request: Request,
    client_id: int,
    user: Operator,
    session: SessionDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
) -> Response:
    """A consent given at a local time in the operator's zone: the API's PATCH consent_at."""
    values = await form_of(request)
    try:
        payload = parse(ClientUpdate, _consent_fields(values))
        await service.update(
            session, client_id, payload, hasher=hasher, actor=actor, now=clock.now()
        )
    except AppError as error:
        await session.rollback()
        row = await service.get(session, client_id)
        return await _client_page(request, session, row, consent_values=values, error=error)
    return RedirectResponse(f"{PREFIX}/clients/{client_id}?consent=1", status_code=303)


@router.post("/{client_id}/withdraw-consent")
async def withdraw_consent(
    client_id: int,
    user: Operator,
    session: SessionDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
) -> Response:
    """The API's PATCH with consent_at: null: advertising stops; service messages still go."""
    payload = parse(ClientUpdate, {"consent_at": None})
    await service.update(session, client_id, payload, hasher=hasher, actor=actor, now=clock.now())
    return RedirectResponse(f"{PREFIX}/clients/{client_id}?withdrawn=1", status_code=303)


@router.post("/{client_id}/opt-out", response_class=HTMLResponse)
async def opt_out_client(
    request: Request,
    client_id: int,
    user: Operator,
    session: SessionDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
) -> Response:
    """The API's POST /clients/{id}/opt-out: the client's unsent reports are skipped."""
    values = await form_of(request)
    payload = parse(OptOutRequest, blank_to_none({"source": values.get("source", "")}, "source"))
    row = await service.get(session, client_id)
    await consent_service.opt_out_clients(
        session, [row.id], source=payload.source, actor=actor, hasher=hasher, now=clock.now()
    )
    return RedirectResponse(f"{PREFIX}/clients/{client_id}?opted_out=1", status_code=303)


@router.post("/{client_id}/delete")
async def delete_client(
    request: Request,
    client_id: int,
    user: Operator,
    session: SessionDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
) -> Response:
    await service.delete(session, client_id, hasher=hasher, now=clock.now())
    return RedirectResponse(f"{PREFIX}/clients?deleted={client_id}", status_code=303)


def _client_fields(values: dict[str, Any]) -> dict[str, Any]:
    fields = {name: values.get(name, "") for name in ("phone", "operator_code", "tag", "timezone")}
    return blank_to_none(fields, "operator_code", "timezone")


def _consent_fields(values: dict[str, Any]) -> dict[str, Any]:
    """consent_at (a local time in the named zone) and consent_source, both required."""
    raw_at = str(values.get("consent_at", "")).strip()
    source = str(values.get("consent_source", "")).strip()
    zone = str(values.get("zone", "")).strip() or "UTC"
    if not is_zone(zone):
        raise InvalidInput.field(["zone"], reasons.ZONE_UNKNOWN, zone=zone)
    if not raw_at:
        raise InvalidInput.field(["consent_at"], reasons.CONSENT_TIME_MISSING)
    try:
        local = datetime.fromisoformat(raw_at)
    except ValueError:
        raise InvalidInput.field(["consent_at"], reasons.DATE_AND_TIME) from None
    if not source:
        raise InvalidInput.field(["consent_source"], reasons.CONSENT_SOURCE_MISSING)
    aware = local.replace(tzinfo=ZoneInfo(zone))
    return {"consent_at": aware.isoformat(), "consent_source": source}


async def _client_page(
    request: Request,
    session: AsyncSession,
    row: Client,
    *,
    values: dict[str, Any] | None = None,
    consent_values: dict[str, Any] | None = None,
    error: AppError | None = None,
) -> Response:
    """A client's page: the form, its consent state and newest consent changes, and errors
    beside the form they belong to (the edit form's, or the consent form's)."""
    client = ClientRead.model_validate(row)
    history = await consent_service.latest_history(session, row, limit=HISTORY_SHOWN)
    errors = _errors_of(error, request) if error is not None and consent_values is None else {}
    consent_errors = (
        _errors_of(error, request) if error is not None and consent_values is not None else {}
    )
    return render(
        request,
        "client_form.html",
        {
            "client": client,
            "values": values if values is not None else client.model_dump(),
            "errors": errors,
            "consent_values": consent_values or {"zone": zone_of(request)},
            "consent_errors": consent_errors,
            "history": [ConsentEventRead.model_validate(event) for event in history],
        },
        status_code=error.status_code if error is not None else 200,
    )


def _errors_of(error: AppError, request: Request) -> dict[str, str]:
    errors = field_errors(error, request)
    if not errors or error.status_code == 409:
        errors[""] = error_text(error, request)
    return errors


def _form_again(request: Request, values: dict[str, Any], error: AppError) -> Response:
    """The new-client form again, with the API's messages beside the fields."""
    return render(
        request,
        "client_form.html",
        {"client": None, "values": values, "errors": _errors_of(error, request)},
        status_code=error.status_code,
    )


async def _chunks_of(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(UPLOAD_CHUNK_BYTES):
        yield chunk
