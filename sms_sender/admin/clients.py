"""The client directory: search, pages, create / edit / delete, and CSV import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from sms_sender.admin.forms import blank_to_none, cursor_of, form_of, next_cursor_of, parse
from sms_sender.admin.pages import PREFIX, ConsoleRoute, field_errors, render
from sms_sender.auth.endpoints import CurrentUser, Operator
from sms_sender.clients import csv_import, service
from sms_sender.clients.schemas import ClientCreate, ClientRead, ImportResult
from sms_sender.consent.dependencies import PhoneHasherDep
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
UPLOAD_CHUNK_BYTES = 64 * 1024


@router.get("", response_class=HTMLResponse)
async def list_clients(request: Request, user: CurrentUser, session: ReadSessionDep) -> Response:
    filters = {name: request.query_params.get(name, "").strip()[:64] for name in SEARCH_FIELDS}
    rows = await service.search(
        session, after_id=cursor_of(request), limit=DEFAULT_LIMIT, **filters
    )
    return render(
        request,
        "clients.html",
        {
            "clients": [
                ClientRead.model_validate(row, from_attributes=True) for row in rows[:DEFAULT_LIMIT]
            ],
            "next_cursor": next_cursor_of([row.id for row in rows]),
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
        return _form_again(request, None, values, error)
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
            raise InvalidInput.field(["file"], "choose a CSV file to import")
        return await csv_import.import_clients(
            session,
            csv_import.read_lines(_chunks_of(upload)),
            default_timezone=settings.default_timezone,
            hasher=hasher,
            now=clock.now(),
        )


@router.get("/{client_id}", response_class=HTMLResponse)
async def edit_client(
    request: Request, client_id: int, user: CurrentUser, session: ReadSessionDep
) -> Response:
    client = ClientRead.model_validate(await service.get(session, client_id))
    return render(
        request,
        "client_form.html",
        {"client": client, "values": client.model_dump(), "errors": {}},
    )


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
        client = ClientRead.model_validate(await service.get(session, client_id))
        return _form_again(request, client, values, error)
    return RedirectResponse(f"{PREFIX}/clients/{client_id}?saved=1", status_code=303)


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


def _form_again(
    request: Request, client: ClientRead | None, values: dict[str, Any], error: AppError
) -> Response:
    errors = field_errors(error)
    if not errors or error.status_code == 409:
        errors[""] = error.detail
    return render(
        request,
        "client_form.html",
        {"client": client, "values": values, "errors": errors},
        status_code=error.status_code,
    )


async def _chunks_of(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(UPLOAD_CHUNK_BYTES):
        yield chunk
