"""Who is asking: the bearer token of ``/api/v1`` and the session user of the console."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import State

from sms_sender import reasons
from sms_sender.audit.actor import Actor, bind_actor
from sms_sender.audit.models import AuditSource
from sms_sender.auth import service, sessions
from sms_sender.auth.models import Role, User
from sms_sender.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="A token from `sms-sender token create NAME`.")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# Set in the request's scope by TokenBeforeBody once it has checked the token.
TOKEN_CHECKED = "sms_sender.token_checked"


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 unless the bearer token is active (or was, within the RecentTokens window).

    Sets ``request.state.token_name``: who asked, for the log lines of actions that need it,
    and ``request.state.token_holder`` (the name and the token's rights).
    The token's name is also the actor of whatever the request changes (the audit log).
    """
    state = request.app.state
    holder = request.scope.get(TOKEN_CHECKED)  # TokenBeforeBody checked it before the body
    if holder is None:
        holder = await check_token(state, credentials.credentials if credentials else None)
    request.state.token_name = holder.name
    request.state.token_holder = holder
    bind_actor(Actor(name=holder.name, source=AuditSource.API, clock=state.clock))


async def require_audit_token(request: Request) -> None:
    """403 unless the request's bearer token may read the audit log (after require_token)."""
    service.require_audit_reader(request.state.token_holder)


async def check_token(state: State, token: str | None) -> service.TokenHolder:
    """The bearer-token rule, for the dependency and TokenBeforeBody: who holds the token.

    Unauthorized unless the token is active (or was, within the RecentTokens window).
    """
    recent: service.RecentTokens = state.recent_tokens
    now = state.clock.now()
    token_hash = service.hash_token(token) if token else ""
    if token_hash and (holder := recent.vouch(token_hash, now)) is not None:
        return holder
    # Its own read-only session: the request's unit of work (and, on SQLite, the write
    # lock) starts only when the handler first writes, not while a slow upload arrives.
    async with state.read_sessionmaker() as session:
        found = await service.authenticate(session, token)
        holder = service.TokenHolder(found.name, reads_audit=found.reads_audit)
    recent.remember(token_hash, now, holder)
    return holder


async def current_user(request: Request) -> User:
    """The signed-in console user (401 otherwise); a write also needs the session's CSRF token.

    Read in its own read-only session, like the bearer token: a page that only reads never
    takes SQLite's write lock. Sets ``request.state.csrf_token`` for the page's forms.
    """
    cookies = sessions.cookies_of(request)
    token = cookies.token_of(request)
    user = None
    if token is not None:
        async with request.app.state.read_sessionmaker() as session:
            user = await sessions.session_user(session, token, request.app.state.clock.now())
    if token is None or user is None:
        raise Unauthorized.because(reasons.SIGNED_OUT)
    if request.method in UNSAFE_METHODS:
        await _check_csrf(request, cookies, token)
    request.state.user = user
    request.state.csrf_token = cookies.csrf_token(token)
    bind_actor(Actor(name=user.name, source=AuditSource.ADMIN, clock=request.app.state.clock))
    return user


async def _check_csrf(request: Request, cookies: sessions.SessionCookies, token: str) -> None:
    offered = request.headers.get(sessions.CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if offered is None and content_type.startswith(FORM_TYPES):
        # Starlette keeps the parsed form, so the handler reads it again for free.
        field = (await request.form()).get(sessions.CSRF_FIELD)
        offered = field if isinstance(field, str) else None
    if not cookies.csrf_matches(token, offered):
        raise Forbidden.because(reasons.CSRF_MISSING)


def require_role(role: Role) -> Callable[[Request], Awaitable[User]]:
    """A dependency: the signed-in user, if their role allows ``role``'s work (403 otherwise)."""

    async def allowed_user(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.may(role):
            raise Forbidden.because(reasons.ROLE_TOO_LOW, role=user.role, needed=role)
        return user

    return allowed_user  # type: ignore[return-value]


CurrentUser = Annotated[User, Depends(current_user)]
Operator = Annotated[User, Depends(require_role(Role.OPERATOR))]
Admin = Annotated[User, Depends(require_role(Role.ADMIN))]
