"""The dashboard: what is running now, what comes next, and how sending went lately."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from sms_sender.admin.pages import PREFIX, ConsoleRoute, render
from sms_sender.auth.endpoints import CurrentUser

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, user: CurrentUser) -> HTMLResponse:
    return render(request, "dashboard.html")
