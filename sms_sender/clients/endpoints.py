"""HTTP routes of the client directory: CRUD, the tags facet and the CSV import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from sms_sender.clients import csv_import, service
from sms_sender.clients.schemas import (
    ClientCreate,
    ClientRead,
    ClientUpdate,
    Facets,
    ImportResult,
    OperatorCode,
    TagText,
)
from sms_sender.clock import Clock
from sms_sender.config import Settings
from sms_sender.db import MAX_ID
from sms_sender.errors import InvalidInput, UnsupportedMediaType
from sms_sender.pagination import Page, PageRequest, next_cursor, page_request
from sms_sender.web import ClockDep, SessionDep, SettingsDep

router = APIRouter(tags=["clients"])

ClientId = Annotated[int, Path(ge=1, le=MAX_ID, description="The client's id.")]

UPLOAD_CHUNK_BYTES = 64 * 1024
IMPORT_PATH = "/clients/import"
# The import's own body limit (every other route has SMS_SENDER_MAX_BODY_BYTES).
IMPORT_SETTING = "SMS_SENDER_MAX_IMPORT_BYTES"


@router.post("/clients", status_code=status.HTTP_201_CREATED, summary="Add a client")
async def create_client(
    payload: ClientCreate, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> ClientRead:
    client = await service.create(
        session, payload, default_timezone=settings.default_timezone, now=clock.now()
    )
    return ClientRead.model_validate(client)


@router.get("/clients", summary="List clients, optionally by tag and operator code")
async def list_clients(
    session: SessionDep,
    page: Annotated[PageRequest, Depends(page_request)],
    tag: Annotated[
        list[TagText],
        Query(description="Only clients with this tag; repeat for any of several."),
    ] = [],  # noqa: B006 (FastAPI copies parameter defaults per request)
    operator_code: Annotated[
        list[OperatorCode],
        Query(description="Only clients with this operator code; repeat for any of several."),
    ] = [],  # noqa: B006
) -> Page[ClientRead]:
    clients = await service.page(
        session, after_id=page.after_id, limit=page.limit, tags=tag, operator_codes=operator_code
    )
    # One validation of the whole page (its loop runs in pydantic-core), not one per client.
    return Page[ClientRead].model_validate(
        {
            "items": clients[: page.limit],
            "next_cursor": next_cursor([client.id for client in clients], page.limit),
        },
        from_attributes=True,
    )


@router.get("/tags", summary="Every tag and operator code in the directory")
async def read_facets(session: SessionDep) -> Facets:
    return await service.facets(session)


_IMPORT_BODY = {
    "required": True,
    "description": "A CSV file with the header `phone,operator_code,tag,timezone`; "
    "operator_code, tag and timezone cells may be empty (defaults apply). UTF-8.",
    "content": {
        "text/csv": {
            "schema": {"type": "string"},
            "example": "phone,operator_code,tag,timezone\n"
            "79001234567,,vip,Europe/Moscow\n79161234567,916,,\n",
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}


@router.post(
    IMPORT_PATH,
    summary="Import clients from CSV",
    description="Streams the file: any size works. Valid rows are added; each rejected row is "
    "reported by line number (the header is line 1), including phones already taken.",
    openapi_extra={"requestBody": _IMPORT_BODY},
    responses={415: {"description": "Neither text/csv nor multipart/form-data."}},
)
async def import_clients(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> ImportResult:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == "text/csv":
        return await _import(session, request.stream(), settings, clock)
    if media_type == "multipart/form-data":
        # Starlette spools the uploaded file to disk past 1 MB, so this too is streamed.
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidInput.field(
                    ["body", "file"], "send the CSV as a file field named 'file'"
                )
            return await _import(session, _chunks_of(upload), settings, clock)
    raise UnsupportedMediaType(
        "send the CSV as text/csv or as a multipart/form-data file field 'file', "
        f"not {media_type or 'a body without Content-Type'}"
    )


@router.api_route(IMPORT_PATH, methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def import_takes_only_post() -> None:
    """Without this, PUT /clients/import would reach PUT /clients/{client_id} and get a 422."""
    raise StarletteHTTPException(status.HTTP_405_METHOD_NOT_ALLOWED)


async def _import(
    session: AsyncSession, chunks: AsyncIterator[bytes], settings: Settings, clock: Clock
) -> ImportResult:
    return await csv_import.import_clients(
        session,
        csv_import.read_lines(chunks),
        default_timezone=settings.default_timezone,
        now=clock.now(),
    )


async def _chunks_of(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(UPLOAD_CHUNK_BYTES):
        yield chunk


@router.get("/clients/{client_id}", summary="Read a client")
async def read_client(client_id: ClientId, session: SessionDep) -> ClientRead:
    return ClientRead.model_validate(await service.get(session, client_id))


@router.patch("/clients/{client_id}", summary="Change some fields of a client")
async def update_client(
    client_id: ClientId, payload: ClientUpdate, session: SessionDep, clock: ClockDep
) -> ClientRead:
    client = await service.update(session, client_id, payload, now=clock.now())
    return ClientRead.model_validate(client)


@router.put("/clients/{client_id}", summary="Replace a client; omitted fields take defaults")
async def replace_client(
    client_id: ClientId,
    payload: ClientCreate,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> ClientRead:
    client = await service.replace(
        session, client_id, payload, default_timezone=settings.default_timezone, now=clock.now()
    )
    return ClientRead.model_validate(client)


@router.delete(
    "/clients/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a client; its reports stay, its unsent ones are cancelled",
)
async def delete_client(client_id: ClientId, session: SessionDep, clock: ClockDep) -> Response:
    await service.delete(session, client_id, now=clock.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
