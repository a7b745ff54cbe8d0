"""Sign-in with a password, sign-out, and the language switch."""

from __future__ import annotations

import math
import secrets
from typing import Annotated
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sms_sender.admin.i18n import LANGUAGE_COOKIE, Language, language_of, translator
from sms_sender.admin.pages import PREFIX, ConsoleRoute, render
from sms_sender.auth import sessions, sign_ins, users
from sms_sender.auth.endpoints import CurrentUser
from sms_sender.auth.throttle import LoginThrottle
from sms_sender.web import ClockDep, SessionDep

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
_log = structlog.get_logger(__name__)

# The sign-in form's own CSRF token (there is no session yet): a cookie the form must echo.
LOGIN_COOKIE = "sms_sender_login"


def safe_next(target: str | None) -> str:
    """Only a path inside the console: never a redirect to somebody else's site."""
    target = target or PREFIX
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX) or "\\" in target:
        return PREFIX
    return target


def login_page(
    request: Request, *, next_url: str, error: str = "", hint: str = "", status_code: int = 200
) -> HTMLResponse:
    form_token = secrets.token_urlsafe(16)
    response = render(
        request,
        "login.html",
        {
            "next_url": next_url,
            "error": error,
            "hint": hint,
            "form_token": form_token,
            "local_login": request.app.state.settings.local_login,
            "oidc_provider": oidc.provider_name if (oidc := request.app.state.oidc) else None,
        },
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        form_token,
        max_age=3600,
        path=f"{PREFIX}/login",
        httponly=True,
        samesite="strict",
        secure=sessions.cookies_of(request).secure(request),
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return login_page(request, next_url=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = PREFIX,
) -> Response:
    _ = translator(language_of(request))
    next_url = safe_next(next)
    if not request.app.state.settings.local_login:
        return login_page(
            request,
            next_url=next_url,
            error=_("Signing in with a password is turned off here."),
            status_code=403,
        )
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return login_page(
            request,
            next_url=next_url,
            error=_(
                "The sign-in form was out of date; it has been reloaded. Please sign in again."
            ),
            status_code=403,
        )
    throttle: LoginThrottle = request.app.state.login_throttle
    address = address_of(request)
    now = clock.now()
    wait = await throttle.wait_needed(session, name, address, now)
    if wait.total_seconds() > 0:
        # Logged, not audited: a guesser would fill the audit log with these.
        _log.warning("console sign-in refused: too many failures", address=address)
        seconds = str(math.ceil(wait.total_seconds()))
        return login_page(
            request,
            next_url=next_url,
            error=_("Too many failed sign-ins."),
            hint=_("Wait %s seconds, then try again.") % seconds,
            status_code=429,
        )
    user = await users.authenticate(session, name, password)
    if user is None:
        await throttle.failed(session, name, address, now)
        await sign_ins.sign_in_failed(session, clock, name, "wrong name or password", address)
        return login_page(
            request,
            next_url=next_url,
            error=_("Wrong name or password."),
            hint=_("Check the spelling and the keyboard layout, then try again."),
            status_code=401,
        )
    await throttle.succeeded(session, name)
    await sign_ins.signed_in(session, clock, user, "password", address)
    response = RedirectResponse(next_url, status_code=303)
    await sessions.start_session(session, request, response, user, now)
    response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post("/logout")
async def logout(
    request: Request, user: CurrentUser, session: SessionDep, clock: ClockDep
) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    await sessions.end_session(session, request, response)
    await sign_ins.signed_out(session, clock, user, address_of(request))
    return response


def address_of(request: Request) -> str:
    """The client's address as the server sees it (a proxy's, behind one)."""
    return request.client.host if request.client else "unknown"


@router.get("/lang")
async def switch_language(
    language: Annotated[Language, Query(alias="to")],
    next: Annotated[str | None, Query()] = None,
) -> Response:
    """Remember the chosen language in a cookie (a preference, no server state changes)."""
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE, language.value, max_age=365 * 86400, path="/", samesite="lax"
    )
    return response
