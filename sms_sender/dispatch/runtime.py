"""Builds a DeliveryEngine from the settings, with the provider and HTTP client it owns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.clock import Clock
from sms_sender.config import Settings
from sms_sender.db import Notifier
from sms_sender.dispatch.engine import DeliveryEngine
from sms_sender.providers.registry import build_provider, gateway_sessions

# A worker retries any unit of work that lost the database (repository.UNAVAILABLE), so its own
# database pool (SQLAlchemy's AsyncEngine) skips the ping made at every checkout: with asyncpg
# that is three round trips (BEGIN, ";", ROLLBACK) before each transaction, a tenth of a
# worker's time.
WORKER_DATABASE_OPTIONS: dict[str, Any] = {"pool_pre_ping": False}


@asynccontextmanager
async def delivery_engine(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    clock: Clock,
    *,
    worker_id: str | None = None,
) -> AsyncIterator[DeliveryEngine]:
    """The delivery engine for ``settings.provider``; its gateway sessions close with the block."""
    async with gateway_sessions(settings) as sessions:
        yield DeliveryEngine(
            settings=settings,
            sessionmaker=sessionmaker,
            notifier=notifier,
            clock=clock,
            provider=build_provider(settings, sessions),
            worker_id=worker_id,
        )
