"""Engines over the test database, and waiting for what they do (test data: tests/arrange.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.config import Settings
from sms_sender.db import Notifier
from sms_sender.dispatch import DeliveryEngine, EngineTuning, RetryPolicy, WorkerTuning
from sms_sender.providers.base import Provider
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")


# Short enough that a test never waits on them, long enough not to busy-loop.
FAST = EngineTuning(
    worker=WorkerTuning(poll_interval=timedelta(seconds=5), result_linger=0.01, shutdown_grace=2.0),
    scheduler_poll=timedelta(seconds=5),
    retry_after_error=0.1,
)

EngineFactory = Callable[..., DeliveryEngine]


@pytest.fixture
def make_engine(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    clock: FakeClock,
) -> EngineFactory:
    """An engine over the test database; keyword arguments override settings."""

    def build(
        provider: Provider,
        *,
        tuning: EngineTuning = FAST,
        retry: RetryPolicy | None = None,
        notifier_: Notifier | None = None,
        sessionmaker_: async_sessionmaker[AsyncSession] | None = None,
        **overrides: Any,
    ) -> DeliveryEngine:
        defaults: dict[str, Any] = {"rate_limit": 1_000_000.0, "retry_backoff": 1.0}
        engine_settings = settings.model_copy(update={**defaults, **overrides})
        return DeliveryEngine(
            settings=engine_settings,
            sessionmaker=sessionmaker_ or sessionmaker,
            notifier=notifier_ or notifier,
            clock=clock,
            provider=provider,
            tuning=tuning,
            retry=retry,
        )

    return build


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = 10.0, what: str = "condition"
) -> None:
    """Poll a condition that another task or process makes true (the database has no events)."""
    try:
        async with asyncio.timeout(within):
            while not await condition():  # noqa: ASYNC110 - rows in a database fire no events
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {within:g}s") from None
