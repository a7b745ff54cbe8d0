"""Record actions in the audit log (and in the log lines, with the ids); read them back."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from sms_sender.audit import repository
from sms_sender.audit.actor import current_actor
from sms_sender.audit.models import AuditAction, AuditEntry, AuditTarget

_log = structlog.get_logger(__name__)
_PENDING_LINES = "pending_audit_lines"


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
    # Logged when the transaction commits, so the log never tells of a change that was undone.
    session.info.setdefault(_PENDING_LINES, []).append(
        {
            "action": str(action),
            "target": str(target),
            "actor": actor.name,
            "source": str(actor.source),
            "audit_id": entry.id,
            "detail": entry.detail,
            **ids,
        }
    )
    return entry


@event.listens_for(Session, "after_commit")
def _log_committed(session: Session) -> None:
    for line in session.info.pop(_PENDING_LINES, []):
        _log.info("audit", **line)


@event.listens_for(Session, "after_rollback")
def _forget_undone(session: Session) -> None:
    session.info.pop(_PENDING_LINES, None)


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
