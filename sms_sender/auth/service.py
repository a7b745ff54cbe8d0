"""API tokens: created from the CLI, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import reasons
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.service import record
from sms_sender.auth import repository
from sms_sender.auth.models import ApiToken
from sms_sender.errors import Conflict, Forbidden, NotFound, Unauthorized

TOKEN_PREFIX = "sms_"
# Tokens the API remembers as active, at most: past it the memory is cleared and refilled.
RECENT_TOKENS_MAX = 1024


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """Who holds an active token: its name (the actor of what it changes) and its rights."""

    name: str
    reads_audit: bool = False


def hash_token(token: str) -> str:
    # A random 256-bit token needs no slow hash: SHA-256 cannot be brute-forced back to it.
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    session: AsyncSession, name: str, now: datetime, *, reads_audit: bool = False
) -> str:
    """Store a new token under ``name`` and return it in clear (the only time it is shown).

    ``reads_audit``: the token may also read the audit log (``GET /api/v1/audit``).
    """
    if await repository.by_name(session, name) is not None:
        raise Conflict.because(reasons.TOKEN_EXISTS, name=name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    stored = await repository.add(
        session,
        ApiToken(name=name, token_hash=hash_token(token), created_at=now, reads_audit=reads_audit),
    )
    detail = f"{name} (reads the audit log)" if reads_audit else name
    await record(session, AuditAction.CREATED, AuditTarget.TOKEN, stored.id, detail)
    return token


def require_audit_reader(holder: TokenHolder) -> None:
    """Forbidden unless the token was created to read the audit log."""
    if not holder.reads_audit:
        raise Forbidden(
            f"the token {holder.name!r} may not read the audit log; an admin can create one "
            "that may (sms-sender token create NAME --audit, or the console's API tokens page)"
        )


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
    revoked_id = await repository.revoke(session, name, now)
    if revoked_id is None:
        raise NotFound.because(reasons.TOKEN_NOT_FOUND, name=name)
    await record(session, AuditAction.REVOKED, AuditTarget.TOKEN, revoked_id, name)


class RecentTokens:
    """Hashes of tokens found active in the database within the last ``ttl``.

    A hit spares the request its own database lookup (a session, a pooled connection and a
    query: about a third of a small request's work). The price is that a revoked token keeps
    working in this process until its entry ages out, so ``ttl`` bounds how late a revocation
    takes effect; a zero ``ttl`` remembers nothing. Unknown and revoked tokens are never kept.
    """

    def __init__(self, ttl: timedelta, max_entries: int = RECENT_TOKENS_MAX) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._checked: dict[str, tuple[datetime, TokenHolder]] = {}

    def vouch(self, token_hash: str, now: datetime) -> TokenHolder | None:
        """The token's holder if it was found active less than ``ttl`` ago (by ``now``'s clock)."""
        checked_at, holder = self._checked.get(token_hash, (None, None))
        # A clock that went backwards makes the entry stale too, never longer-lived.
        if checked_at is not None and checked_at <= now < checked_at + self.ttl:
            return holder
        return None

    def remember(self, token_hash: str, now: datetime, holder: TokenHolder) -> None:
        if self.ttl <= timedelta(0):
            return
        if len(self._checked) >= self.max_entries and token_hash not in self._checked:
            self._checked.clear()
        self._checked[token_hash] = (now, holder)
