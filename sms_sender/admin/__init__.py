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

from sms_sender.admin import (
    access,
    audit,
    clients,
    dashboard,
    login,
    mailing_actions,
    mailings,
    messages,
    oidc_login,
)
from sms_sender.admin.pages import PREFIX
from sms_sender.auth.oidc import OidcClient
from sms_sender.auth.oidc_access import OidcConfigurationError
from sms_sender.auth.oidc_config import OidcConfig
from sms_sender.auth.sessions import SessionCookies
from sms_sender.auth.throttle import LoginThrottle
from sms_sender.config import Settings

STATIC_DIR = Path(__file__).parent / "static"


def install_console(app: FastAPI, settings: Settings) -> None:
    """Mount the console at /admin, its files at /admin/static, and send / there."""
    app.state.session_cookies = SessionCookies(settings)
    app.state.login_throttle = LoginThrottle()
    app.state.oidc = _oidc_client(settings)
    for pages in (
        login.router,
        oidc_login.router,
        dashboard.router,
        clients.router,
        messages.router,
        mailings.router,
        mailing_actions.router,
        access.router,
        audit.router,
    ):
        app.include_router(pages)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="console-static")

    @app.get("/", include_in_schema=False)
    async def to_console() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=307)


def _oidc_client(settings: Settings) -> OidcClient | None:
    """The OpenID provider's client if configured; OidcConfigurationError for bad settings."""
    config = OidcConfig.from_settings(settings)
    if config is None and not settings.local_login:
        raise OidcConfigurationError(
            "SMS_SENDER_LOCAL_LOGIN=false needs an OpenID provider (SMS_SENDER_OIDC_ISSUER and "
            "SMS_SENDER_OIDC_CLIENT_ID), otherwise nobody can sign in to the console"
        )
    return OidcClient(config) if config else None
