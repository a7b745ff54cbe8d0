"""Record actions in the audit log (and in the log lines, with the ids); read them back."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.audit import repository
from sms_sender.audit.actor import current_actor
from sms_sender.audit.models import AuditAction, AuditEntry, AuditTarget

_log = structlog.get_logger(__name__)


async def record(
    session: AsyncSession,
    action: AuditAction,
    target: AuditTarget,
    target_id: int | None,
    detail: str | None = None,
) -> AuditEntry:
    """Add an entry for the bound actor in the caller's transaction: it stands or falls with it."""
    actor = current_actor()
    entry = AuditEntry(
        at=actor.clock.now(),
        actor=actor.name,
        source=actor.source,
        action=action,
        target=target,
        target_id=target_id,
        detail=detail[:1000] if detail else None,
    )
    await repository.add(session, entry)
    ids = {f"{target}_id": target_id} if target_id is not None else {}
    _log.info(
        "audit",
        action=str(action),
        target=str(target),
        actor=actor.name,
        source=str(actor.source),
        audit_id=entry.id,
        detail=entry.detail,
        **ids,
    )
    return entry


async def page(
    session: AsyncSession,
    *,
    before_id: int | None,
    limit: int,
    actor: str | None = None,
    action: AuditAction | None = None,
    target: AuditTarget | None = None,
    target_id: int | None = None,
) -> Sequence[AuditEntry]:
    return await repository.page(
        session,
        before_id=before_id,
        limit=limit,
        actor=actor,
        action=action,
        target=target,
        target_id=target_id,
    )
