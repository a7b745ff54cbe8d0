"""Crash recovery: after ``kill -9`` of a process mid-mailing, how long until every report is final.

SQLite: ``sms-sender serve`` is killed and started again at once; the row is the time from the
restart. PostgreSQL: two ``sms-sender worker`` processes share the mailing and one is killed;
the row is the time from the kill, the survivor taking over. The lease is the default 60 s:
the leftovers must be taken over (heartbeats, a vanished pid) instead of waiting for it.
Messages go through the ``http`` provider to the fake gateway, whose record counts repeats.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from benchmarks.databases import BenchDatabase, fresh_database, seed_clients, start_mailing_now
from benchmarks.delivery import observer, wait_until_done
from benchmarks.gateway import Gateway, duplicates
from benchmarks.services import HttpService, ServiceProcess, worker_process
from benchmarks.suite import Context, Figure, Row, Target
from sms_sender.reports.models import Report, ReportStatus

GATEWAY_LATENCY_MS = 20.0
CONCURRENCY = 10
KILL_AFTER = 0.25  # the share of reports sent when the process is killed
WATCH_EVERY = 0.05


async def measure_recovery(context: Context) -> list[Row]:
    reports = context.sizes.recovery_reports
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        await seed_clients(db, reports)
        mailing_id, _ = await start_mailing_now(db, lasting=timedelta(hours=1))
        with Gateway(context.workdir / "recovery-calls.txt", latency_ms=GATEWAY_LATENCY_MS) as gw:
            settings = {
                "database_url": db.url,
                "provider": "http",
                "http_url": gw.url,
                "http_token": gw.token,
                "concurrency": str(CONCURRENCY),
                "rate_limit": "1000000",
            }
            if db.is_postgresql:
                left, seconds = await _kill_one_of_two(db, mailing_id, settings, context)
            else:
                left, seconds = await _kill_and_restart(db, mailing_id, settings, context)
        calls = gw.calls()
        by_status = await _count_by_status(db, mailing_id)
    sizes = {"reports": reports}
    details = {
        "left_at_kill": left,
        "by_status": by_status,
        "gateway_calls": len(calls),
        "lease_seconds": 60,
        "how": "two workers, one killed" if db.is_postgresql else "serve killed and restarted",
    }
    return [
        Row("recovery", "after kill -9", seconds, "s", Target("<=", 10, "s"), sizes, details),
        Row(
            "recovery",
            "repeated sends",
            duplicates(calls),
            "",
            Target("==", 0, ""),
            sizes,
            correctness=True,
        ),
    ]


async def _kill_and_restart(
    db: BenchDatabase, mailing_id: int, settings: dict[str, str], context: Context
) -> tuple[int, float]:
    with HttpService("serve", settings, context.workdir / "recovery-serve-1.log") as first:
        await first.ready()
        left = await _kill_when_sent(db, mailing_id, first)
    restarted_at = time.monotonic()
    with HttpService("serve", settings, context.workdir / "recovery-serve-2.log") as second:
        await wait_until_done(db, mailing_id, [second], within=120)
    return left, time.monotonic() - restarted_at


async def _kill_one_of_two(
    db: BenchDatabase, mailing_id: int, settings: dict[str, str], context: Context
) -> tuple[int, float]:
    logs = [context.workdir / f"recovery-worker-{number}.log" for number in (1, 2)]
    with (
        worker_process(settings, logs[0], instant=False) as survivor,
        worker_process(settings, logs[1], instant=False) as doomed,
    ):
        left = await _kill_when_sent(db, mailing_id, doomed)
        killed_at = time.monotonic()
        await wait_until_done(db, mailing_id, [survivor], within=120)
    return left, time.monotonic() - killed_at


async def _kill_when_sent(db: BenchDatabase, mailing_id: int, victim: ServiceProcess) -> int:
    """SIGKILL ``victim`` once KILL_AFTER of the reports are sent; how many were left then."""
    watcher = observer(db)
    try:
        async with watcher.connect() as connection:
            while True:
                counts = await _counts(connection, mailing_id)
                await connection.rollback()
                total = sum(counts.values())
                if counts.get(ReportStatus.SENT, 0) >= KILL_AFTER * total:
                    victim.kill_9()
                    left = counts.get(ReportStatus.PENDING, 0) + counts.get(ReportStatus.SENDING, 0)
                    if left == 0:
                        raise RuntimeError("the mailing finished before the kill: use more reports")
                    return left
                victim.check_alive()
                await asyncio.sleep(WATCH_EVERY)
    finally:
        await watcher.dispose()


async def _counts(connection: AsyncConnection, mailing_id: int) -> dict[str, int]:
    rows = await connection.execute(
        select(Report.status, func.count())
        .where(Report.mailing_id == mailing_id)
        .group_by(Report.status)
    )
    return {str(status): int(count) for status, count in rows}


async def _count_by_status(db: BenchDatabase, mailing_id: int) -> dict[str, int]:
    watcher = observer(db)
    try:
        async with watcher.connect() as connection:
            return await _counts(connection, mailing_id)
    finally:
        await watcher.dispose()


FIGURE = Figure("recovery", "Crash recovery after kill -9 (default 60 s lease)", measure_recovery)
