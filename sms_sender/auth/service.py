"""API tokens: created from the CLI, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.auth import repository
from sms_sender.auth.models import ApiToken
from sms_sender.errors import Conflict, NotFound, Unauthorized

TOKEN_PREFIX = "sms_"


def hash_token(token: str) -> str:
    # A random 256-bit token needs no slow hash: SHA-256 cannot be brute-forced back to it.
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(session: AsyncSession, name: str, now: datetime) -> str:
    """Store a new token under ``name`` and return it in clear (the only time it is shown)."""
    if await repository.by_name(session, name) is not None:
        raise Conflict(f"a token named {name!r} exists already; pick another name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await repository.add(session, ApiToken(name=name, token_hash=hash_token(token), created_at=now))
    return token


async def authenticate(session: AsyncSession, token: str | None) -> ApiToken:
    if not token:
        raise Unauthorized(
            "send 'Authorization: Bearer <token>'; create one: sms-sender token create NAME"
        )
    found = await repository.active_by_hash(session, hash_token(token))
    if found is None:
        raise Unauthorized("the bearer token is unknown or revoked")
    return found


async def list_tokens(session: AsyncSession) -> Sequence[ApiToken]:
    return await repository.all_tokens(session)


async def revoke_token(session: AsyncSession, name: str, now: datetime) -> None:
    if not await repository.revoke(session, name, now):
        raise NotFound(f"no active token named {name!r}")
