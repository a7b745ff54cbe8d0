from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from sms_sender.db import MAX_ID
from sms_sender.messages import service
from sms_sender.messages.schemas import MessageCreate, MessageRead, MessageUpdate
from sms_sender.pagination import Page, PageRequest, next_cursor, page_request
from sms_sender.web import ClockDep, ReadSessionDep, SessionDep

router = APIRouter(prefix="/messages", tags=["messages"])

MessageId = Annotated[int, Path(ge=1, le=MAX_ID, description="The message's id.")]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a message text")
async def create_message(
    payload: MessageCreate, session: SessionDep, clock: ClockDep
) -> MessageRead:
    return service.to_read(await service.create(session, payload, clock.now()))


@router.get("", summary="List message texts")
async def list_messages(
    session: ReadSessionDep, page: Annotated[PageRequest, Depends(page_request)]
) -> Page[MessageRead]:
    messages = await service.page(session, after_id=page.after_id, limit=page.limit)
    return Page[MessageRead](
        items=[service.to_read(message) for message in messages[: page.limit]],
        next_cursor=next_cursor([message.id for message in messages], page.limit),
    )


@router.get("/{message_id}", summary="Read a message text")
async def read_message(message_id: MessageId, session: ReadSessionDep) -> MessageRead:
    return service.to_read(await service.get(session, message_id))


@router.patch("/{message_id}", summary="Change a message text")
async def update_message(
    message_id: MessageId, payload: MessageUpdate, session: SessionDep, clock: ClockDep
) -> MessageRead:
    return service.to_read(await service.update(session, message_id, payload, clock.now()))


@router.delete(
    "/{message_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an unused message"
)
async def delete_message(message_id: MessageId, session: SessionDep) -> Response:
    await service.delete(session, message_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
