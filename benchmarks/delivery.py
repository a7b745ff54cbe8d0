"""Run one mailing through worker processes and measure how fast its reports were sent.

The mailing's reports are materialised first (the state at start_at), then the workers start
and the harness only watches: a cheap "anything left?" probe every 100 ms, and afterwards the
``sent_at`` stamps the workers wrote. Throughput is taken over the middle of the run (from the
10th to the 90th percentile of ``sent_at``), so process start-up and the last stragglers do not
blur the steady rate; the whole span is reported beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from benchmarks.databases import BenchDatabase, seed_clients, start_mailing_now
from benchmarks.gateway import Gateway, duplicates
from benchmarks.services import ServiceProcess, worker_process
from sms_sender.db import normalise_url
from sms_sender.reports.models import Report, ReportStatus

LEFT_TO_DO = (ReportStatus.PENDING, ReportStatus.SENDING)
WATCH_EVERY = 0.1
STEADY_FROM, STEADY_TO = 0.10, 0.90


@dataclass(frozen=True)
class Plan:
    """What to deliver and how: reports, worker processes, provider and engine settings."""

    reports: int
    workers: int = 1
    instant: bool = False  # a provider that answers at once instead of the settings' one
    gateway_latency_ms: float | None = None  # None: no gateway (the instant provider)
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class Delivery:
    messages_per_second: float
    seconds: float
    by_status: dict[str, int]
    worker_peak_rss_mb: list[float]
    gateway_calls: int | None = None
    gateway_duplicates: int | None = None
    # CPU used from the workers' start to the last report: with wall_seconds, how busy the
    # processes sharing the machine were (the database's own is not counted here).
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = float("nan")

    @property
    def sent(self) -> int:
        return self.by_status.get(ReportStatus.SENT, 0)


def observer(db: BenchDatabase) -> AsyncEngine:
    """An engine for watching: on SQLite it reads without taking the write lock (WAL)."""
    return create_async_engine(normalise_url(db.url))


async def deliver(
    db: BenchDatabase, plan: Plan, workdir: Path, *, within: float, partial: bool = False
) -> Delivery:
    """Seed, materialise, run ``plan.workers`` processes to the end; raise if they die or stall.

    With ``partial``, running out of ``within`` seconds just ends the run early.
    """
    await seed_clients(db, plan.reports)
    mailing_id, _ = await start_mailing_now(db, lasting=timedelta(hours=6))
    settings = {"database_url": db.url, **plan.settings}
    with contextlib.ExitStack() as stack:
        gateway = None
        if plan.gateway_latency_ms is not None:
            gateway = stack.enter_context(
                Gateway(
                    workdir / f"gateway-{mailing_id}-{time.time_ns()}.txt",
                    latency_ms=plan.gateway_latency_ms,
                )
            )
            settings |= {"provider": "http", "http_url": gateway.url, "http_token": gateway.token}
        workers = [
            stack.enter_context(
                worker_process(
                    settings, workdir / f"worker-{plan.reports}-{number}.log", instant=plan.instant
                )
            )
            for number in range(plan.workers)
        ]
        started = time.monotonic()
        await wait_until_done(db, mailing_id, workers, within=within, partial=partial)
        wall_seconds = time.monotonic() - started
        peaks = [round(worker.peak_rss_bytes() / 2**20, 1) for worker in workers]
        cpu = {f"worker {number}": w.cpu_seconds() for number, w in enumerate(workers, 1)}
        if gateway is not None:
            cpu["gateway"] = gateway.cpu_seconds()
    delivery = await measured(db, mailing_id)
    delivery.worker_peak_rss_mb = peaks
    delivery.cpu_seconds = {name: round(seconds, 2) for name, seconds in cpu.items()}
    delivery.wall_seconds = round(wall_seconds, 2)
    if gateway is not None:
        calls = gateway.calls()
        delivery.gateway_calls = len(calls)
        delivery.gateway_duplicates = duplicates(calls)
    return delivery


async def wait_until_done(
    db: BenchDatabase,
    mailing_id: int,
    workers: list[ServiceProcess],
    *,
    within: float,
    partial: bool = False,
) -> None:
    deadline = time.monotonic() + within
    watcher = observer(db)
    try:
        async with watcher.connect() as connection:
            while await _anything_left(connection, mailing_id):
                for worker in workers:
                    worker.check_alive()
                if time.monotonic() > deadline:
                    if partial:
                        return
                    raise TimeoutError(f"reports still unsent after {within:g}s")
                await asyncio.sleep(WATCH_EVERY)
    finally:
        await watcher.dispose()


async def _anything_left(connection: AsyncConnection, mailing_id: int) -> bool:
    query = (
        select(Report.id)
        .where(Report.mailing_id == mailing_id, Report.status.in_(LEFT_TO_DO))
        .limit(1)
    )
    found = (await connection.execute(query)).first() is not None
    await connection.rollback()  # a fresh snapshot for the next look
    return found


async def measured(db: BenchDatabase, mailing_id: int) -> Delivery:
    """Steady throughput between the 10th and 90th percentile of sent_at, and the totals."""
    of_mailing = Report.mailing_id == mailing_id
    async with db.sessionmaker() as session:
        counts = await session.execute(
            select(Report.status, func.count()).where(of_mailing).group_by(Report.status)
        )
        by_status: dict[str, int] = dict(counts.tuples().all())
        sent = by_status.get(ReportStatus.SENT, 0)
        if sent < 2:
            return Delivery(float("nan"), float("nan"), by_status, [])
        first_sent_at, last_written_at = (
            await session.execute(
                select(func.min(Report.sent_at), func.max(Report.updated_at)).where(of_mailing)
            )
        ).one()

        async def nth_sent_at(rank: int) -> datetime:
            stamp = await session.scalar(
                select(Report.sent_at)
                .where(of_mailing, Report.status == ReportStatus.SENT)
                .order_by(Report.sent_at)
                .offset(rank)
                .limit(1)
            )
            if stamp is None:
                raise LookupError(f"report {rank} of {sent} sent has no sent_at")
            return stamp

        low, high = int(sent * STEADY_FROM), int(sent * STEADY_TO) - 1
        steady_seconds = (await nth_sent_at(high) - await nth_sent_at(low)).total_seconds()
    rate = (high - low) / steady_seconds if steady_seconds > 0 else float("inf")
    whole_run = last_written_at - first_sent_at if first_sent_at and last_written_at else None
    return Delivery(rate, whole_run.total_seconds() if whole_run else float("nan"), by_status, [])
