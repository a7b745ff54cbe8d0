from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.audit.models import AuditEntry


async def add(session: AsyncSession, entry: AuditEntry) -> AuditEntry:
    session.add(entry)
    await session.flush()
    return entry


async def page(
    session: AsyncSession,
    *,
    before_id: int | None,
    limit: int,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    target_id: int | None = None,
) -> Sequence[AuditEntry]:
    """Up to ``limit + 1`` entries, newest first, older than ``before_id`` when given."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    if target_id is not None:
        query = query.where(AuditEntry.target_id == target_id)
    return (await session.scalars(query)).all()
