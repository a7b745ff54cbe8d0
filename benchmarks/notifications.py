"""How long the notifications loop reads the database: ``python -m benchmarks.notifications``.

Every 30 s each engine works out the alerts due (counting the reports of the mailings that
are candidates), every 5 minutes also the failure share (counting every running mailing), and
once a day a day's mailings for the report. All run on a read-only connection (on SQLite beside
the writers, not in their queue), so what matters is their duration on a big mailing. This
seeds one running mailing of ``--reports`` reports in a mix of statuses, one in ten
``unknown`` (so the mailing is a candidate: the worst case of a poll), and times each call
(best of ``--repeat``).

    python -m benchmarks.notifications --reports 200000 --db both
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from benchmarks.databases import (
    BenchDatabase,
    analyse,
    fresh_database,
    seed_clients,
    start_mailing_now,
)
from benchmarks.postgres import ThrowawayPostgres
from sms_sender.clock import SystemClock
from sms_sender.config import Settings
from sms_sender.dialects import read_only
from sms_sender.notifications import service

# One report in ten failed, one undelivered, one unknown, the rest delivered or still pending.
_MIX = """
UPDATE reports SET status = CASE id % 10
    WHEN 0 THEN 'failed' WHEN 1 THEN 'undelivered' WHEN 2 THEN 'unknown'
    WHEN 3 THEN 'pending' ELSE 'delivered' END,
  error = CASE id % 10 WHEN 0 THEN 'invalid number ' || (id % 7) WHEN 1 THEN 'absent' END
"""


async def _best_of(repeat: int, call: Callable[[], Awaitable[object]]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        best = min(best, time.perf_counter() - started)
    return best


async def measure(kind: str, reports: int, repeat: int, workdir: Path, admin: str | None) -> None:
    async with fresh_database(kind, workdir, admin) as db:
        await _seed(db, reports)
        settings = Settings(database_url=db.url)
        reader = read_only(db.engine)
        now = SystemClock().now()
        day = now.astimezone(settings.report_zone).date()

        async def alerts() -> object:
            async with reader.connect() as connection:
                return await service.alerts_due(connection, settings, now, failure_share=False)

        async def alerts_and_share() -> object:
            async with reader.connect() as connection:
                return await service.alerts_due(connection, settings, now, failure_share=True)

        async def report() -> object:
            async with reader.connect() as connection:
                return await service.build_daily_report(connection, day, settings.report_zone, now)

        calls = (
            ("alerts (each poll)", alerts),
            ("alerts + share", alerts_and_share),
            ("daily report", report),
        )
        for name, call in calls:
            seconds = await _best_of(repeat, call)
            print(f"{kind:10} {reports:>9,} reports  {name:18} {seconds * 1000:8.1f} ms")


async def _seed(db: BenchDatabase, reports: int) -> None:
    await seed_clients(db, reports)
    await start_mailing_now(db, lasting=timedelta(hours=6))
    async with db.engine.begin() as connection:
        await connection.execute(text(_MIX))
    await analyse(db)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.notifications")
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory() as workdir:
        for kind in kinds:
            if kind == "postgresql":
                with ThrowawayPostgres() as postgres:
                    asyncio.run(
                        measure(kind, args.reports, args.repeat, Path(workdir), postgres.admin_url)
                    )
            else:
                asyncio.run(measure(kind, args.reports, args.repeat, Path(workdir), None))


if __name__ == "__main__":
    main()
