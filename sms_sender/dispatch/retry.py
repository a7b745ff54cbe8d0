"""When to try a transiently failed send again: a pure policy, so it is tested without a clock.

The delay doubles with each attempt from ``base`` seconds (``SMS_SENDER_RETRY_BACKOFF``), is
capped at ``cap``, and is drawn uniformly from ``[0, delay]`` ("full jitter"): after a gateway
outage the retries of thousands of messages spread out instead of arriving together. The
engine persists the answer as the report's ``next_attempt_at``; no worker ever sleeps on it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, giving up once ``max_attempts`` sends were made.

    An extension point: a subclass may look at ``error`` (e.g. retry a throttled send later).
    """

    max_attempts: int
    base: float
    cap: float = 3600.0
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False)

    def next_attempt_at(self, attempts: int, error: str, now: datetime) -> datetime | None:
        """When to send again after ``attempts`` sends failed with ``error``; None: give up."""
        if attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.uniform(0.0, self.max_delay(attempts)))

    def max_delay(self, attempts: int) -> float:
        """The upper bound of the jittered delay after ``attempts`` failed sends."""
        exponent = min(max(attempts - 1, 0), 62)  # 2**62 s is already far beyond any cap
        return min(self.cap, self.base * 2.0**exponent)
