"""``GET /audit``: the audit log, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from sms_sender.audit import service
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.schemas import AuditEntryRead
from sms_sender.db import MAX_ID
from sms_sender.pagination import Page, PageRequest, next_cursor, page_request
from sms_sender.web import ReadSessionDep

# Mounted by app.py behind auth's require_audit_token: only tokens created to read it
# (``token create NAME --audit``) may, as it tells who did what. (audit is below auth.)
router = APIRouter(tags=["audit"])


@router.get(
    "/audit",
    summary="The audit log, newest first",
    description="Who created, changed, paused, resumed, cancelled, resent, imported or deleted "
    "what, who signed in to the console and who failed to, when, and from where (api, admin, "
    "cli). `next_cursor` leads to older entries. Only a token created to read the audit log "
    "(`sms-sender token create NAME --audit`, or the console's API tokens page) may; any other "
    "gets 403.",
)
async def list_audit_entries(
    session: ReadSessionDep,
    page: Annotated[PageRequest, Depends(page_request)],
    actor: Annotated[
        str | None, Query(max_length=200, description="Only this user or token name.")
    ] = None,
    action: Annotated[AuditAction | None, Query(description="Only this action.")] = None,
    target: Annotated[AuditTarget | None, Query(description="Only this kind of thing.")] = None,
    target_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only the thing with this id.")
    ] = None,
) -> Page[AuditEntryRead]:
    entries = await service.page(
        session,
        before_id=page.after_id or None,
        limit=page.limit,
        actor=actor,
        action=action,
        target=target,
        target_id=target_id,
    )
    return Page[AuditEntryRead](
        items=[AuditEntryRead.model_validate(entry) for entry in entries[: page.limit]],
        next_cursor=next_cursor([entry.id for entry in entries], page.limit),
    )
