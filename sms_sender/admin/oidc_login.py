"""Sign-in through an OpenID provider: ``/admin/login/oidc`` out, ``/admin/auth/callback`` back.

The state, nonce and PKCE verifier of a sign-in in progress ride in a signed cookie scoped to the
callback path and good for ten minutes; the callback checks them (sms_sender.auth.oidc), decides
the role (auth.oidc_access), finds or makes the user and starts a session like a password does.
A refusal shows the sign-in page with the reason.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from sms_sender.admin.i18n import language_of, translator
from sms_sender.admin.login import address_of, login_page, safe_next
from sms_sender.admin.pages import PREFIX, ConsoleRoute
from sms_sender.audit.actor import Actor, bind_actor
from sms_sender.audit.models import AuditSource
from sms_sender.auth import sessions, sign_ins, users
from sms_sender.auth.oidc import CALLBACK_PATH, START_AGAIN, OidcClient, PendingLogin
from sms_sender.auth.oidc_access import LoginRefused
from sms_sender.errors import NotFound
from sms_sender.web import ClockDep, SessionDep

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
_log = structlog.get_logger(__name__)

PENDING_COOKIE = "sms_sender_oidc"
PENDING_SECONDS = 600


def oidc_client_of(request: Request) -> OidcClient:
    client: OidcClient | None = request.app.state.oidc
    if client is None:
        raise NotFound("sign-in through an OpenID provider is not configured here")
    return client


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return sessions.cookies_of(request).serializer(salt="sms-sender-oidc")


@router.get("/login/oidc")
async def begin_oidc_login(request: Request, next: str | None = None) -> Response:
    """Off to the provider, with a new state, nonce and PKCE challenge."""
    client = oidc_client_of(request)
    next_url = safe_next(next)
    try:
        url, pending = await client.begin(client.redirect_uri(str(request.base_url)), next_url)
    except LoginRefused as refused:
        return _refused(request, refused, next_url)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        _serializer(request).dumps(pending.to_dict()),
        max_age=PENDING_SECONDS,
        path=CALLBACK_PATH,
        httponly=True,
        # Lax: the provider sends the browser back with a top-level GET, which carries it.
        samesite="lax",
        secure=sessions.cookies_of(request).secure(request),
    )
    return response


@router.get("/auth/callback")
async def finish_oidc_login(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    """Back from the provider: check everything, then sign the person in with their role."""
    client = oidc_client_of(request)
    now = clock.now()
    pending = _pending(request)
    method = f"oidc ({client.provider_name})"
    email = None
    try:
        if pending is None:
            raise LoginRefused(START_AGAIN)
        redirect_uri = client.redirect_uri(str(request.base_url))
        identity = await client.finish(str(request.url), pending, redirect_uri, now)
        # Only an address the provider verified names who failed, if it comes to that.
        email = identity.email.lower() if identity.email_verified else None
        role = client.config.access.role_for(identity, client.provider_name)
        bind_actor(Actor(name=identity.email.lower(), source=AuditSource.ADMIN, clock=clock))
        user = await users.sign_in_from_oidc(session, identity.email.lower(), role, now)
    except LoginRefused as refused:
        _log.info("console sign-in through oidc refused", reason=str(refused))
        why = f"{method} refused: {refused}"
        await sign_ins.sign_in_failed(session, clock, email, why, address_of(request), vouched=True)
        return _refused(request, refused, pending.next_url if pending else PREFIX)
    await sign_ins.signed_in(session, clock, user, method, address_of(request))
    response = RedirectResponse(pending.next_url, status_code=303)
    await sessions.start_session(session, request, response, user, now)
    response.delete_cookie(PENDING_COOKIE, path=CALLBACK_PATH)
    return response


def _pending(request: Request) -> PendingLogin | None:
    cookie = request.cookies.get(PENDING_COOKIE)
    if not cookie:
        return None
    try:
        values = _serializer(request).loads(cookie, max_age=PENDING_SECONDS)
        return PendingLogin.from_dict(values)
    except (BadSignature, KeyError, TypeError):
        return None


def _refused(request: Request, refused: LoginRefused, next_url: str) -> HTMLResponse:
    _ = translator(language_of(request))
    response = login_page(
        request, next_url=safe_next(next_url), error=refused.say(_), status_code=403
    )
    response.delete_cookie(PENDING_COOKIE, path=CALLBACK_PATH)
    return response
