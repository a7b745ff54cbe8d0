"""The retry policy: exponential growth, a cap, full jitter, and giving up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sms_sender.dispatch.retry import RetryPolicy

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def longest(low: float, high: float) -> float:
    return high


def shortest(low: float, high: float) -> float:
    return low


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (8, 256.0)]
)
def test_the_longest_delay_doubles_with_each_attempt(attempts: int, seconds: float) -> None:
    policy = RetryPolicy(max_attempts=10, base=2.0, uniform=longest)
    assert policy.next_attempt_at(attempts, "timeout", NOW) == NOW + timedelta(seconds=seconds)


def test_the_delay_is_capped() -> None:
    policy = RetryPolicy(max_attempts=100, base=2.0, cap=60.0, uniform=longest)
    assert policy.next_attempt_at(50, "timeout", NOW) == NOW + timedelta(seconds=60)


def test_jitter_is_drawn_from_zero_to_the_longest_delay() -> None:
    bounds: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        bounds.append((low, high))
        return high / 2

    policy = RetryPolicy(max_attempts=5, base=3.0, uniform=record)
    assert policy.next_attempt_at(2, "503", NOW) == NOW + timedelta(seconds=3)
    assert bounds == [(0.0, 6.0)]


def test_real_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(max_attempts=5, base=1.0)
    delays = {policy.next_attempt_at(3, "503", NOW) for _ in range(50)}
    assert all(d is not None and NOW <= d <= NOW + timedelta(seconds=4) for d in delays)
    assert len(delays) > 1  # actually jittered


def test_gives_up_once_max_attempts_sends_were_made() -> None:
    policy = RetryPolicy(max_attempts=3, base=1.0, uniform=shortest)
    assert policy.next_attempt_at(2, "503", NOW) == NOW
    assert policy.next_attempt_at(3, "503", NOW) is None
    assert RetryPolicy(max_attempts=1, base=1.0).next_attempt_at(1, "503", NOW) is None
