"""HTTP routes of the client directory: CRUD, the tags facet, the CSV import, and a client's
opt-out and consent history (rules in ``sms_sender.consent``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from starlette.exceptions import HTTPException as StarletteHTTPException

from sms_sender import text_lines
from sms_sender.clients import csv_import, service, upload
from sms_sender.clients.schemas import (
    ClientCreate,
    ClientRead,
    ClientUpdate,
    Facets,
    ImportResult,
    OperatorCode,
    TagText,
)
from sms_sender.consent import service as consent_service
from sms_sender.consent.dependencies import PhoneHasherDep
from sms_sender.consent.schemas import ConsentEventRead, OptOutRequest
from sms_sender.db import MAX_ID
from sms_sender.pagination import Page, PageRequest, next_cursor, page_request
from sms_sender.web import CallerDep, ClockDep, ReadSessionDep, SessionDep, SettingsDep

router = APIRouter(tags=["clients"])
# A client's opt-out and consent history: client routes, listed with consent's in the API docs.
client_consent_router = APIRouter(tags=["consent"])

ClientId = Annotated[int, Path(ge=1, le=MAX_ID, description="The client's id.")]

IMPORT_PATH = "/clients/import"
# The import's own body limit (every other route has SMS_SENDER_MAX_BODY_BYTES).
IMPORT_SETTING = "SMS_SENDER_MAX_IMPORT_BYTES"


@router.post("/clients", status_code=status.HTTP_201_CREATED, summary="Add a client")
async def create_client(
    payload: ClientCreate,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
) -> ClientRead:
    client = await service.create(
        session,
        payload,
        default_timezone=settings.default_timezone,
        hasher=hasher,
        actor=actor,
        now=clock.now(),
    )
    return ClientRead.model_validate(client)


@router.get("/clients", summary="List clients, optionally by tag and operator code")
async def list_clients(
    session: ReadSessionDep,
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
async def read_facets(session: ReadSessionDep) -> Facets:
    return await service.facets(session)


_IMPORT_BODY = {
    "required": True,
    "description": "A CSV file with the header `phone,operator_code,tag,timezone`, optionally "
    "followed by `,consent_at,consent_source` (when and where the client agreed to "
    "advertising: both or neither); operator_code, tag and timezone cells may be empty "
    "(defaults apply). A phone on the suppression list comes in opted out unless its "
    "consent_at is later than the opt-out. UTF-8.",
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
    description="The file is received whole first (up to SMS_SENDER_MAX_IMPORT_BYTES, 64 MiB "
    "by default: about 2 million rows), then imported in batches of 5,000 rows, each committed. "
    "Valid rows are added; each rejected row is reported by line number (the header is line 1), "
    "including phones already taken, so sending the same file again adds nothing twice. A file "
    "that is not UTF-8 or lacks the header is refused whole.",
    openapi_extra={"requestBody": _IMPORT_BODY},
    responses={
        408: {"description": "The upload stalled past SMS_SENDER_UPLOAD_READ_TIMEOUT."},
        413: {"description": "The file is larger than SMS_SENDER_MAX_IMPORT_BYTES."},
        415: {"description": "Neither text/csv nor multipart/form-data."},
    },
)
async def import_clients(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
) -> ImportResult:
    async with upload.received_csv(request, settings.upload_read_timeout) as csv_file:
        # A file that is not UTF-8, has an absurd line or a wrong header is refused whole,
        # before the first batch is written (batches are committed one by one).
        await csv_import.check_lines(text_lines.read_line_batches(upload.chunks_of(csv_file)))
        await csv_file.seek(0)
        return await csv_import.import_clients(
            session,
            text_lines.read_line_batches(upload.chunks_of(csv_file)),
            default_timezone=settings.default_timezone,
            hasher=hasher,
            now=clock.now(),
            after_each_batch=session.commit,
        )


@router.api_route(IMPORT_PATH, methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def import_takes_only_post() -> None:
    """Without this, PUT /clients/import would reach PUT /clients/{client_id} and get a 422."""
    raise StarletteHTTPException(status.HTTP_405_METHOD_NOT_ALLOWED)


@router.get("/clients/{client_id:int}", summary="Read a client")
async def read_client(client_id: ClientId, session: ReadSessionDep) -> ClientRead:
    return ClientRead.model_validate(await service.get(session, client_id))


@router.patch("/clients/{client_id:int}", summary="Change some fields of a client")
async def update_client(
    client_id: ClientId,
    payload: ClientUpdate,
    session: SessionDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
) -> ClientRead:
    client = await service.update(
        session, client_id, payload, hasher=hasher, actor=actor, now=clock.now()
    )
    return ClientRead.model_validate(client)


@router.put("/clients/{client_id:int}", summary="Replace a client; omitted fields take defaults")
async def replace_client(
    client_id: ClientId,
    payload: ClientCreate,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
) -> ClientRead:
    client = await service.replace(
        session,
        client_id,
        payload,
        default_timezone=settings.default_timezone,
        hasher=hasher,
        actor=actor,
        now=clock.now(),
    )
    return ClientRead.model_validate(client)


@router.delete(
    "/clients/{client_id:int}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a client; its reports stay, its unsent ones are cancelled",
)
async def delete_client(
    client_id: ClientId, session: SessionDep, clock: ClockDep, hasher: PhoneHasherDep
) -> Response:
    await service.delete(session, client_id, hasher=hasher, now=clock.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@client_consent_router.post(
    "/clients/{client_id:int}/opt-out",
    summary="Opt a client out: nothing more is sent to it",
    description="Stops every later message to the client, service ones included: its unsent "
    "reports become `skipped` (error `opted_out`) and no send starts after this answers. The "
    "phone goes on the suppression list, so deleting and re-importing the client keeps it "
    "opted out; only a consent given later ends it. Already opted out: unchanged, 200.",
)
async def opt_out_client(
    client_id: ClientId,
    session: SessionDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
    payload: OptOutRequest | None = None,
) -> ClientRead:
    client = await service.get(session, client_id)
    source = payload.source if payload else None
    await consent_service.opt_out_clients(
        session, [client.id], source=source, actor=actor, hasher=hasher, now=clock.now()
    )
    # Read again: it may have been deleted since the first read (then a 404, not a 500).
    session.expire(client)
    return ClientRead.model_validate(await service.get(session, client_id))


@client_consent_router.get(
    "/clients/{client_id:int}/consent-history",
    summary="A client's consent and opt-out changes, oldest first",
    description="Every change of consent or opt-out, with when, where from and who made it: "
    "the proof of consent the advertising law asks the sender to keep.",
)
async def read_consent_history(
    client_id: ClientId,
    session: ReadSessionDep,
    page: Annotated[PageRequest, Depends(page_request)],
) -> Page[ConsentEventRead]:
    client = await service.get(session, client_id)
    events = await consent_service.history_page(
        session, client, after_id=page.after_id, limit=page.limit
    )
    return Page[ConsentEventRead](
        items=[ConsentEventRead.model_validate(event) for event in events[: page.limit]],
        next_cursor=next_cursor([event.id for event in events], page.limit),
    )
