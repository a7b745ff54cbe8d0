from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import column, exists, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.messages.models import Message

# Mailings use messages, not the other way round: this package names only the mailings
# table's foreign key column, so it never imports sms_sender.mailings (see docs/architecture.md).
_MAILING_MESSAGE_IDS = table("mailings", column("message_id"))


async def add(session: AsyncSession, message: Message) -> Message:
    session.add(message)
    await session.flush()
    return message


async def get(session: AsyncSession, message_id: int) -> Message | None:
    return await session.get(Message, message_id)


async def get_for_delete(session: AsyncSession, message_id: int) -> Message | None:
    """The message, row-locked so no mailing can start using it before the delete commits."""
    return await session.get(Message, message_id, with_for_update=True)


async def page(session: AsyncSession, *, after_id: int, limit: int) -> Sequence[Message]:
    """Up to ``limit + 1`` messages after ``after_id`` (the extra one says a next page exists)."""
    query = select(Message).where(Message.id > after_id).order_by(Message.id).limit(limit + 1)
    return (await session.scalars(query)).all()


async def used_by_a_mailing(session: AsyncSession, message_id: int) -> bool:
    return bool(
        await session.scalar(
            select(exists().where(_MAILING_MESSAGE_IDS.c.message_id == message_id))
        )
    )


async def delete(session: AsyncSession, message: Message) -> None:
    await session.delete(message)
    await session.flush()
