"""The engine's database work alone: what the ceiling would be if sending cost nothing.

For each batch the worker claims, the database sees the same transactions the engine makes:
the claim (with the mailing's terms), the hand-over (``sending``, the rate-limit reservation),
the settle, and the finished-mailing check after it. Here they run back to back in one process
with no provider, no tasks and no log lines, over a mailing of the same size as the
``ceiling`` figure's, in a database of its own. The rate this reaches is the ceiling's upper
bound on this machine and database (the engine overlaps some of these transactions with its
sends, so it can come close to it but not beat it by much); the engine's share of it says how
much of the ceiling is our own code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from benchmarks.databases import BenchDatabase
from sms_sender.clock import SystemClock
from sms_sender.db import create_engine
from sms_sender.dispatch import repository
from sms_sender.dispatch.ratelimit import RateLimiter
from sms_sender.dispatch.repository import Settlement
from sms_sender.dispatch.runtime import WORKER_DATABASE_OPTIONS
from sms_sender.reports.models import ReportStatus

OWNER = "statements-only"
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class StatementsRun:
    messages_per_second: float
    reports: int
    seconds: float
    batches: int


async def run_statements(db: BenchDatabase, *, batch_size: int, rate: float) -> StatementsRun:
    """Claim, hand over and settle every due report, one batch at a time, as fast as possible."""
    clock = SystemClock()
    limiter = RateLimiter(rate)
    engine = create_engine(db.url, **WORKER_DATABASE_OPTIONS)
    settled = batches = 0
    try:
        async with engine.begin() as connection:
            await limiter.ensure_row(connection)
        started = time.perf_counter()
        while True:
            now = clock.now()
            async with engine.begin() as connection:
                claimed = await repository.claim(
                    connection, owner=OWNER, now=now, lease_until=now + LEASE, limit=batch_size
                )
                if not claimed:
                    break
                await repository.mailing_terms(
                    connection, list({report.mailing_id for report in claimed})
                )
            ids = [report.id for report in claimed]
            async with engine.begin() as connection:
                now = clock.now()
                marked = await repository.hand_over(
                    connection, ids, owner=OWNER, provider="none", now=now, lease_until=now + LEASE
                )
                await repository.release(
                    connection, [i for i in ids if i not in marked], owner=OWNER
                )
                await limiter.reserve(connection, len(marked))
            now = clock.now()
            settlements = [
                Settlement(
                    report_id=report.id,
                    mailing_id=report.mailing_id,
                    client_id=report.client_id,
                    status=ReportStatus.SENT,
                    sent_at=now,
                )
                for report in claimed
                if report.id in marked
            ]
            async with engine.begin() as connection:
                settled += await repository.settle(connection, settlements, owner=OWNER, now=now)
            mailing_ids = sorted({report.mailing_id for report in claimed})
            async with engine.connect() as connection:  # as the worker asks: a read first
                over = await repository.mailings_over(connection, now, mailing_ids)
            if over:
                async with engine.begin() as connection:
                    await repository.finish_mailings(connection, now, over)
            batches += 1
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return StatementsRun(settled / seconds if seconds else float("nan"), settled, seconds, batches)
