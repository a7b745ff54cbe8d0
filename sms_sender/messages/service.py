from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import reasons
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.service import record
from sms_sender.errors import Conflict, NotFound
from sms_sender.messages import repository
from sms_sender.messages.encoding import sms_size
from sms_sender.messages.models import Message
from sms_sender.messages.schemas import MessageCreate, MessageRead, MessageUpdate


def to_read(message: Message) -> MessageRead:
    size = sms_size(message.text)
    return MessageRead(
        id=message.id,
        text=message.text,
        length=size.length,
        encoding=size.encoding,
        segments=size.segments,
        created_at=message.created_at,
        updated_at=message.updated_at,
    )


async def create(session: AsyncSession, payload: MessageCreate, now: datetime) -> Message:
    message = Message(text=payload.text, created_at=now, updated_at=now)
    await repository.add(session, message)
    await record(session, AuditAction.CREATED, AuditTarget.MESSAGE, message.id)
    return message


async def get(session: AsyncSession, message_id: int) -> Message:
    message = await repository.get(session, message_id)
    if message is None:
        raise NotFound.because(reasons.MESSAGE_NOT_FOUND, message_id=message_id)
    return message


async def page(session: AsyncSession, *, after_id: int, limit: int) -> Sequence[Message]:
    return await repository.page(session, after_id=after_id, limit=limit)


async def update(
    session: AsyncSession, message_id: int, payload: MessageUpdate, now: datetime
) -> Message:
    """Change the text; mailings already started keep the text they snapshotted."""
    message = await get(session, message_id)
    message.text = payload.text
    message.updated_at = now
    await session.flush()
    await record(session, AuditAction.CHANGED, AuditTarget.MESSAGE, message.id, "text")
    return message


async def delete(session: AsyncSession, message_id: int) -> None:
    message = await repository.get_for_delete(session, message_id)
    if message is None:
        raise NotFound.because(reasons.MESSAGE_NOT_FOUND, message_id=message_id)
    if await repository.used_by_a_mailing(session, message_id):
        raise Conflict.because(reasons.MESSAGE_IN_USE, message_id=message_id)
    await repository.delete(session, message)
    await record(session, AuditAction.DELETED, AuditTarget.MESSAGE, message_id)
