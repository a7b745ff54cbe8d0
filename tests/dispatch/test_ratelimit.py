"""One rate for all workers of a database: reservations never overlap, sends are paced."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.db import Notifier, create_engine, create_sessionmaker
from sms_sender.dispatch.ratelimit import RateLimiter, Reservation
from sms_sender.providers.fake import FakeProvider
from tests.arrange import Arrange
from tests.dispatch.conftest import EngineFactory

pytestmark = pytest.mark.usefixtures("clean_db")


async def reserve(database: AsyncEngine, limiter: RateLimiter, count: int) -> Reservation:
    async with database.begin() as connection:
        await limiter.ensure_row(connection)
        return await limiter.reserve(connection, count)


async def test_concurrent_reservations_get_disjoint_stretches_of_one_timeline(
    database_url: str,
) -> None:
    databases = [create_engine(database_url) for _ in range(2)]  # as two processes would
    # 400 slots at 100/s: a 4 s timeline, far longer than a busy machine takes to make the
    # eight reservations, so each one finds the timeline still taken and goes after the last.
    limiter = RateLimiter(rate=100.0)
    try:
        reservations = await asyncio.gather(
            *(reserve(databases[i % 2], limiter, 50) for i in range(8))
        )
    finally:
        for database in databases:
            await database.dispose()

    spans = sorted((r.starts_at, r.starts_at + r.count / limiter.rate) for r in reservations)
    for (_, earlier_end), (later_start, _) in itertools.pairwise(spans):
        # Disjoint, and back to back: no slot lost between two workers' stretches.
        assert later_start == pytest.approx(earlier_end, abs=1e-5)  # float rounding only
    assert spans[-1][1] - spans[0][0] == pytest.approx(4.0, abs=1e-4)


async def test_sends_are_paced_to_the_rate_across_two_workers(
    arrange: Arrange, make_engine: EngineFactory, database_url: str
) -> None:
    await arrange.many_clients(40)
    await arrange.mailing()
    provider = FakeProvider()  # records real time
    databases = [create_engine(database_url) for _ in range(2)]
    try:
        workers = [
            make_engine(
                provider,
                rate_limit=100.0,
                sessionmaker_=create_sessionmaker(database, Notifier()),
            ).worker
            for database in databases
        ]
        started = datetime.now(UTC)
        await asyncio.gather(*(worker.drain() for worker in workers))
    finally:
        for database in databases:
            await database.dispose()

    assert len(provider.calls) == 40
    assert provider.duplicates() == []
    # At 100/s shared, the k-th send, whichever worker made it, starts at least k/100 s after
    # the start: a send never precedes its slot (it may follow it late, on a busy machine).
    since_start = sorted((call.started_at - started).total_seconds() for call in provider.calls)
    early = [(k, at) for k, at in enumerate(since_start) if at < k / 100.0 - 0.005]
    assert early == []
    assert since_start[-1] >= 0.39
