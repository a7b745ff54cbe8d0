from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Insert, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.audit.models import AuditEntry


async def add(session: AsyncSession, entry: AuditEntry) -> AuditEntry:
    session.add(entry)
    await session.flush()
    return entry


# The bound parameters of entry_insert: "audit_" and a column's name.
ENTRY_COLUMNS = ("at", "actor", "source", "action", "target", "detail")


def entry_insert(target_id: ColumnElement[Any], about: FromClause | None = None) -> Insert:
    """``INSERT INTO audit_entries … SELECT :audit_at, …, target_id [FROM about] RETURNING id``.

    One entry per row of ``about`` (or one, without it), its columns bound as ``audit_<column>``
    (``audit.service.entry_values``): a caller writes it beside the thing it is about, in the
    same statement where the database allows. Build it once and keep it (building costs more
    than running it).
    """
    entries: Table = AuditEntry.__table__  # type: ignore[assignment]
    values = select(
        *(bindparam(f"audit_{name}", type_=entries.c[name].type) for name in ENTRY_COLUMNS),
        target_id,
    )
    if about is not None:
        values = values.select_from(about)
    return (
        entries.insert().from_select([*ENTRY_COLUMNS, "target_id"], values).returning(entries.c.id)
    )


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
