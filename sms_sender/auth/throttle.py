"""Slowdown after repeated failed sign-ins, per user name and per client address.

After ``free_failures`` failures in a row, each further attempt must wait twice as long as the
last (1 s, 2 s, 4 s … up to ``max_delay``); an attempt during the wait is refused without
looking at the password, so guessing gets slower and slower while a person who mistyped a few
times barely notices. A success clears the name's count (not the address's: one address may try
many names). Counts older than ``forget_after`` are dropped. Kept in this process's memory: with
several API processes each slows down on its own, which still bounds the guessing rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_KEYS = 100_000


@dataclass
class _Failures:
    count: int
    last_at: datetime
    next_allowed_at: datetime


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
        self._failures: dict[tuple[str, str], _Failures] = {}

    def wait_needed(self, name: str, address: str, now: datetime) -> timedelta:
        """How long until this name, from this address, may try again (zero: now)."""
        waits = [timedelta(0)]
        for key in (("user", name.strip().lower()), ("ip", address)):
            failures = self._current(key, now)
            if failures is not None and failures.next_allowed_at > now:
                waits.append(failures.next_allowed_at - now)
        return max(waits)

    def failed(self, name: str, address: str, now: datetime) -> None:
        if len(self._failures) >= MAX_KEYS:
            self._failures.clear()
        for key in (("user", name.strip().lower()), ("ip", address)):
            failures = self._current(key, now) or _Failures(0, now, now)
            failures.count += 1
            failures.last_at = now
            over = failures.count - self.free[key[0]]
            if over > 0:
                delay = timedelta(seconds=2 ** (over - 1))
                failures.next_allowed_at = now + min(delay, self.max_delay)
            self._failures[key] = failures

    def succeeded(self, name: str) -> None:
        self._failures.pop(("user", name.strip().lower()), None)

    def _current(self, key: tuple[str, str], now: datetime) -> _Failures | None:
        failures = self._failures.get(key)
        if failures is not None and now - failures.last_at > self.forget_after:
            del self._failures[key]
            return None
        return failures
