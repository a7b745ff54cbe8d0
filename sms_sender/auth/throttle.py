"""Slowdown after repeated failed sign-ins, per user name and per client address.

After ``free_failures`` failures in a row, each further attempt must wait twice as long as the
last (1 s, 2 s, 4 s … up to ``max_delay``); an attempt during the wait is refused without
looking at the password, so guessing gets slower and slower while a person who mistyped a few
times barely notices. A success clears the name's count (not the address's: one address may try
many names). Counts older than ``forget_after`` start again from zero.

The counts live in the database (``login_failures``), so every API process and worker sharing
it holds one slowdown: a guesser spread over processes goes no faster than against one. Each
failure is one upsert per key in the sign-in's own transaction; the row lock of that upsert
serialises concurrent failures of one key on PostgreSQL, and SQLite has one writer anyway.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.auth import repository


class LoginThrottle:
    def __init__(
        self,
        *,
        free_failures: int = 5,
        free_failures_per_address: int = 20,
        max_delay: timedelta = timedelta(minutes=5),
        forget_after: timedelta = timedelta(minutes=30),
    ) -> None:
        self.free = {"user": free_failures, "ip": free_failures_per_address}
        self.max_delay = max_delay
        self.forget_after = forget_after

    async def wait_needed(
        self, session: AsyncSession, name: str, address: str, now: datetime
    ) -> timedelta:
        """How long until this name, from this address, may try again (zero: now)."""
        keys = [_key("user", name), _key("ip", address)]
        allowed_at = await repository.login_allowed_at(session, keys, now - self.forget_after)
        return max(timedelta(0), allowed_at - now) if allowed_at is not None else timedelta(0)

    async def failed(self, session: AsyncSession, name: str, address: str, now: datetime) -> None:
        await repository.forget_login_failures(session, now - self.forget_after)
        for kind, value in (("user", name), ("ip", address)):
            key = _key(kind, value)
            count = await repository.count_login_failure(session, key, now, self.forget_after)
            over = count - self.free[kind]
            if over > 0:
                delay = min(timedelta(seconds=2 ** min(over - 1, 30)), self.max_delay)
                await repository.delay_login(session, key, now + delay)

    async def succeeded(self, session: AsyncSession, name: str) -> None:
        await repository.clear_login_failures(session, _key("user", name))


def _key(kind: str, value: str) -> str:
    normal = value.strip().lower() if kind == "user" else value
    return hashlib.sha256(f"{kind}:{normal}".encode()).hexdigest()
