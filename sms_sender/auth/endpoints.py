"""The bearer-token dependency every ``/api/v1`` route sits behind."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.auth import service
from sms_sender.auth.models import ApiToken
from sms_sender.web import get_read_session

_bearer = HTTPBearer(auto_error=False, description="A token from `sms-sender token create NAME`.")


async def require_token(
    # Its own read-only session: the request's unit of work (and, on SQLite, the write lock)
    # starts only when the handler first writes, not while a slow upload is still arriving.
    session: Annotated[AsyncSession, Depends(get_read_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    return await service.authenticate(session, credentials.credentials if credentials else None)
