"""Record actions in the audit log (and in the log lines, with the ids); read them back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
    values = entry_values(action, target, detail)
    entry = AuditEntry(**values, target_id=target_id)
    await repository.add(session, entry)
    written(session, values, target_id, entry.id)
    return entry


def entry_values(
    action: AuditAction, target: AuditTarget, detail: str | None = None
) -> dict[str, Any]:
    """An entry's columns for the bound actor, all but its target's id.

    For a statement that writes the entry together with the thing it is about, which has no id
    yet (``clients.repository.add``); the caller then reports it with :func:`written`.
    """
    actor = current_actor()
    return {
        "at": actor.clock.now(),
        "actor": actor.name,
        "source": str(actor.source),
        "action": str(action),
        "target": str(target),
        "detail": detail[:1000] if detail else None,
    }


def written(
    session: AsyncSession, values: Mapping[str, Any], target_id: int | None, audit_id: int
) -> None:
    """The entry is in the transaction: log it when the transaction commits."""
    ids = {f"{values['target']}_id": target_id} if target_id is not None else {}
    # Logged when the transaction commits, so the log never tells of a change that was undone.
    session.info.setdefault(_PENDING_LINES, []).append(
        {
            "action": values["action"],
            "target": values["target"],
            "actor": values["actor"],
            "source": values["source"],
            "audit_id": audit_id,
            "detail": values["detail"],
            **ids,
        }
    )


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
