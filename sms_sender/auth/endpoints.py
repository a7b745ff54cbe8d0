"""The bearer-token dependency every ``/api/v1`` route sits behind."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sms_sender.auth import service

_bearer = HTTPBearer(auto_error=False, description="A token from `sms-sender token create NAME`.")


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the bearer token is active (or was, within the RecentTokens window)."""
    state = request.app.state
    token = credentials.credentials if credentials else None
    recent: service.RecentTokens = state.recent_tokens
    now = state.clock.now()
    token_hash = service.hash_token(token) if token else ""
    if token_hash and recent.vouch(token_hash, now):
        return
    # Its own read-only session: the request's unit of work (and, on SQLite, the write lock)
    # starts only when the handler first writes, not while a slow upload is still arriving.
    async with state.read_sessionmaker() as session:
        await service.authenticate(session, token)
    recent.remember(token_hash, now)
