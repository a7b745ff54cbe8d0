"""Console sessions: a random token in a signed, HttpOnly, SameSite=Lax cookie.

The cookie carries the token signed with ``SMS_SENDER_SESSION_SECRET`` (itsdangerous, with the
time it was issued); the ``user_sessions`` table keeps the token's SHA-256, the user and the
expiry. A request is signed in when the signature holds, the row exists and has not expired and
the user is not disabled: so logout, disabling a user and the lifetime setting all take effect
on the next request. The CSRF token of a session is an HMAC of its token, so it needs no storage
and cannot be guessed from the cookie's name or the user.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import structlog
from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.auth import repository
from sms_sender.auth.models import User, UserSession
from sms_sender.config import Settings

SESSION_COOKIE = "sms_sender_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

_log = structlog.get_logger(__name__)


class SessionCookies:
    """Signs and reads session cookies; derives each session's CSRF token."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.session_secret.get_secret_value()
        if not secret:
            # Sessions then end with the process and do not cross processes: fine for one
            # `serve`, not for several API processes (they must share the secret).
            _log.warning("SMS_SENDER_SESSION_SECRET is not set; console sessions end at restart")
            secret = secrets.token_urlsafe(32)
        self._secret = secret.encode()
        self._serializer = URLSafeTimedSerializer(secret, salt="sms-sender-session")
        self.lifetime = timedelta(minutes=settings.session_lifetime_minutes)
        self.always_secure = settings.public_url.startswith("https://")

    def serializer(self, salt: str) -> URLSafeTimedSerializer:
        """A signer with the session secret for another cookie (``salt`` keeps them apart)."""
        return URLSafeTimedSerializer(self._secret, salt=salt)

    def sign(self, token: str) -> str:
        return self._serializer.dumps(token)

    def token_of(self, request: Request) -> str | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            token = self._serializer.loads(cookie, max_age=int(self.lifetime.total_seconds()))
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    def csrf_token(self, session_token: str) -> str:
        return hmac.new(self._secret, b"csrf:" + session_token.encode(), "sha256").hexdigest()

    def csrf_matches(self, session_token: str, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(self.csrf_token(session_token), offered)

    def secure(self, request: Request) -> bool:
        return self.always_secure or request.url.scheme == "https"


def cookies_of(request: Request) -> SessionCookies:
    cookies: SessionCookies = request.app.state.session_cookies
    return cookies


def hash_session_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(
    session: AsyncSession, request: Request, response: Response, user: User, now: datetime
) -> None:
    """Sign ``user`` in: store a new session and set its cookie on ``response``.

    The one way in for every login method (password here, OpenID Connect in auth.oidc); the
    request's unit of work commits the row.
    """
    cookies = cookies_of(request)
    token = secrets.token_urlsafe(32)
    await repository.add_session(
        session,
        UserSession(
            token_hash=hash_session_token(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + cookies.lifetime,
        ),
    )
    user.last_login_at = now
    await session.flush()
    response.set_cookie(
        SESSION_COOKIE,
        cookies.sign(token),
        max_age=int(cookies.lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookies.secure(request),
    )
    _log.info("console sign-in", user_id=user.id, user=user.name, role=user.role)


async def end_session(session: AsyncSession, request: Request, response: Response) -> None:
    """Sign out: the session's row goes, so the cookie is worthless even if kept somewhere."""
    token = cookies_of(request).token_of(request)
    if token is not None:
        await repository.delete_session(session, hash_session_token(token))
    response.delete_cookie(SESSION_COOKIE, path="/")


async def session_user(session: AsyncSession, token: str, now: datetime) -> User | None:
    return await repository.active_session_user(session, hash_session_token(token), now)
