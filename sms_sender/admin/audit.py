"""Admins only: the audit log, newest first, filtered like ``GET /api/v1/audit``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sms_sender.admin.forms import cursor_of, next_cursor_of
from sms_sender.admin.pages import PREFIX, ConsoleRoute, render
from sms_sender.audit import service
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.auth.endpoints import Admin
from sms_sender.db import MAX_ID
from sms_sender.pagination import DEFAULT_LIMIT
from sms_sender.web import ReadSessionDep

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

# Kinds of thing with a console page of their own, to link an entry to.
PAGES = {
    AuditTarget.CLIENT: "clients",
    AuditTarget.MESSAGE: "messages",
    AuditTarget.MAILING: "mailings",
}


@router.get("/audit", response_class=HTMLResponse)
async def audit_log(request: Request, user: Admin, session: ReadSessionDep) -> Response:
    query = request.query_params
    action = query.get("action", "")
    target = query.get("target", "")
    target_id = query.get("target_id", "")
    actor = query.get("actor", "").strip()[:200]
    cursor = cursor_of(request)
    entries = await service.page(
        session,
        before_id=cursor or None,
        limit=DEFAULT_LIMIT,
        actor=actor or None,
        action=AuditAction(action) if action in set(AuditAction) else None,
        target=AuditTarget(target) if target in set(AuditTarget) else None,
        target_id=int(target_id) if target_id.isdigit() and int(target_id) <= MAX_ID else None,
    )
    context = {
        "entries": entries[:DEFAULT_LIMIT],
        "next_cursor": next_cursor_of([entry.id for entry in entries]),
        "filters": {"actor": actor, "action": action, "target": target, "target_id": target_id},
        "actions": list(AuditAction),
        "targets": list(AuditTarget),
        "pages": PAGES,
    }
    return render(request, "audit.html", context)
