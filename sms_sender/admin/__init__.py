"""The admin console: server-rendered pages at /admin for the people who run campaigns.

Pages call the same services as the API (the same rules, 409s and texts); they only read
forms, call a service, and render. Sign-in is a session cookie (sms_sender.auth.sessions),
never a bearer token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from sms_sender.admin import access, clients, dashboard, login, mailings, messages
from sms_sender.admin.pages import PREFIX
from sms_sender.auth.sessions import SessionCookies
from sms_sender.auth.throttle import LoginThrottle
from sms_sender.config import Settings

STATIC_DIR = Path(__file__).parent / "static"


def install_console(app: FastAPI, settings: Settings) -> None:
    """Mount the console at /admin, its files at /admin/static, and send / there."""
    app.state.session_cookies = SessionCookies(settings)
    app.state.login_throttle = LoginThrottle()
    for pages in (
        login.router,
        dashboard.router,
        clients.router,
        messages.router,
        mailings.router,
        access.router,
    ):
        app.include_router(pages)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="console-static")

    @app.get("/", include_in_schema=False)
    async def to_console() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=307)
