"""Message texts: list, create, edit and delete, with a live length / encoding / SMS counter."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sms_sender.admin.forms import cursor_of, form_of, next_cursor_of, parse
from sms_sender.admin.pages import PREFIX, ConsoleRoute, error_text, field_errors, render
from sms_sender.auth.endpoints import CurrentUser, Operator
from sms_sender.errors import AppError
from sms_sender.messages import service
from sms_sender.messages.encoding import sms_size
from sms_sender.messages.schemas import MessageCreate, MessageUpdate
from sms_sender.pagination import DEFAULT_LIMIT
from sms_sender.web import ClockDep, ReadSessionDep, SessionDep

router = APIRouter(prefix=f"{PREFIX}/messages", route_class=ConsoleRoute, include_in_schema=False)


@router.get("", response_class=HTMLResponse)
async def list_messages(request: Request, user: CurrentUser, session: ReadSessionDep) -> Response:
    messages = await service.page(session, after_id=cursor_of(request), limit=DEFAULT_LIMIT)
    return render(
        request,
        "messages.html",
        {
            "messages": [service.to_read(message) for message in messages[:DEFAULT_LIMIT]],
            "next_cursor": next_cursor_of([message.id for message in messages]),
        },
    )


@router.get("/size")
async def size(
    user: CurrentUser, text: Annotated[str, Query(max_length=10_000)] = ""
) -> dict[str, str | int]:
    """The counter under the text box: the same arithmetic the API reports for a message."""
    counted = sms_size(text)
    return {"length": counted.length, "encoding": counted.encoding, "segments": counted.segments}


@router.get("/new", response_class=HTMLResponse)
async def new_message(request: Request, user: Operator) -> Response:
    return render(request, "message_form.html", {"message": None, "text": "", "errors": {}})


@router.post("/new", response_class=HTMLResponse)
async def create_message(
    request: Request, user: Operator, session: SessionDep, clock: ClockDep
) -> Response:
    values = await form_of(request)
    try:
        message = await service.create(session, parse(MessageCreate, values), clock.now())
    except AppError as error:
        await session.rollback()
        return _form_again(request, None, values, error)
    return RedirectResponse(f"{PREFIX}/messages/{message.id}?saved=1", status_code=303)


@router.get("/{message_id}", response_class=HTMLResponse)
async def edit_message(
    request: Request, message_id: int, user: CurrentUser, session: ReadSessionDep
) -> Response:
    message = service.to_read(await service.get(session, message_id))
    return render(
        request, "message_form.html", {"message": message, "text": message.text, "errors": {}}
    )


@router.post("/{message_id}", response_class=HTMLResponse)
async def update_message(
    request: Request, message_id: int, user: Operator, session: SessionDep, clock: ClockDep
) -> Response:
    values = await form_of(request)
    try:
        await service.update(session, message_id, parse(MessageUpdate, values), clock.now())
    except AppError as error:
        await session.rollback()
        message = service.to_read(await service.get(session, message_id))
        return _form_again(request, message, values, error)
    return RedirectResponse(f"{PREFIX}/messages/{message_id}?saved=1", status_code=303)


@router.post("/{message_id}/delete")
async def delete_message(
    request: Request, message_id: int, user: Operator, session: SessionDep
) -> Response:
    await service.delete(session, message_id)
    return RedirectResponse(f"{PREFIX}/messages?deleted={message_id}", status_code=303)


def _form_again(
    request: Request, message: object, values: dict[str, str], error: AppError
) -> Response:
    return render(
        request,
        "message_form.html",
        {
            "message": message,
            "text": values.get("text", ""),
            "errors": field_errors(error, request) or {"": error_text(error, request)},
        },
        status_code=error.status_code,
    )
