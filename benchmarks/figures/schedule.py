"""Time rules with the whole service running: start lag after start_at, and the end_at cut-off.

The service runs as people deploy it: ``sms-sender serve`` (API and engine in one process) on
SQLite, ``sms-sender api`` plus ``sms-sender worker`` on PostgreSQL, where the API's NOTIFY has
to reach the worker's scheduler. Mailings are created through the API, messages go through the
``http`` provider to the fake gateway, whose timed record says when each call arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from benchmarks.databases import BenchDatabase, create_token, fresh_database, seed_clients
from benchmarks.delivery import LEFT_TO_DO, observer
from benchmarks.gateway import Gateway, duplicates
from benchmarks.services import HttpService, worker_process
from benchmarks.suite import Context, Figure, Row, Target, percentile
from sms_sender.mailings.models import Mailing
from sms_sender.reports.models import Report

# Start lag: each mailing is created LEAD before its start_at, one every SPACING.
LEAD = timedelta(milliseconds=500)
SPACING = timedelta(milliseconds=100)
CLIENTS_PER_MAILING = 10
# Cut-off: a mailing too big to finish before its end, with sends in flight at end_at.
CUTOFF_LATENCY_MS = 50.0
CUTOFF_CONCURRENCY = 50
# More than the engine sends through the gateway in a second today, but few enough that
# making the reports (inside the creating request) leaves most of the time for sending.
SATURATED_REPORTS_PER_SECOND = 10_000
WATCH_EVERY = 0.1
# The gateway stamps a call once it has read and parsed it: that trails the moment the worker
# started the call by the loopback transfer and the gateway process's own scheduling delay,
# a few milliseconds on a busy 2-core machine. Later than this is a call started after end_at.
ARRIVAL_TOLERANCE = 0.010


@contextlib.asynccontextmanager
async def running_service(
    db: BenchDatabase, workdir: Path, gateway: Gateway, settings: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The service on ``db`` sending to ``gateway``; yields an authenticated API client."""
    settings = {
        "database_url": db.url,
        "provider": "http",
        "http_url": gateway.url,
        "http_token": gateway.token,
        **settings,
    }
    token = await create_token(db)
    with contextlib.ExitStack() as stack:
        if db.is_postgresql:
            api = stack.enter_context(HttpService("api", settings, workdir / "api.log"))
            stack.enter_context(worker_process(settings, workdir / "worker.log", instant=False))
        else:
            api = stack.enter_context(HttpService("serve", settings, workdir / "serve.log"))
        await api.ready()
        async with api.client(token) as http:
            yield http


async def _create_message(http: httpx.AsyncClient) -> int:
    response = await http.post("/messages", json={"text": "Benchmark: the sale starts now."})
    response.raise_for_status()
    return int(response.json()["id"])


async def _create_mailing(
    http: httpx.AsyncClient, message_id: int, start_at: datetime, end_at: datetime
) -> dict[str, object]:
    response = await http.post(
        "/mailings",
        json={
            "start_at": start_at.isoformat(),
            "end_at": end_at.isoformat(),
            "message_id": message_id,
            "filter": {},
        },
    )
    response.raise_for_status()
    created: dict[str, object] = response.json()
    return created


async def _sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


async def measure_start_lag(context: Context) -> list[Row]:
    mailings = context.sizes.start_lag_mailings
    sizes = {"mailings": mailings, "clients_per_mailing": CLIENTS_PER_MAILING}
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        await seed_clients(db, CLIENTS_PER_MAILING)
        with Gateway(context.workdir / "start-lag-calls.txt") as gateway:
            async with running_service(db, context.workdir, gateway, {}) as http:
                message_id = await _create_message(http)
                first_start = datetime.now(UTC) + LEAD + timedelta(seconds=1)
                for number in range(mailings):
                    start_at = first_start + number * SPACING
                    await _sleep_until(start_at - LEAD)
                    await _create_mailing(http, message_id, start_at, start_at + timedelta(hours=1))
                await _wait_until_all_started(db, mailings, within=30)
        lags = await _start_lags(db)
    started = [lag for lag, _ in lags]
    first_sends = [sent for _, sent in lags if sent is not None]
    details = {
        "lead_ms": LEAD.total_seconds() * 1000,
        "first_send_after_start_at_p50_ms": round(statistics.median(first_sends), 1)
        if first_sends
        else None,
        "first_send_after_start_at_p99_ms": round(percentile(first_sends, 0.99), 1)
        if first_sends
        else None,
        "max_ms": round(max(started), 1),
    }
    return [
        Row(
            "start-lag",
            "p50",
            statistics.median(started),
            "ms",
            Target("<=", 50, "ms"),
            sizes,
            details=details,
        ),
        Row("start-lag", "p99", percentile(started, 0.99), "ms", Target("<=", 50, "ms"), sizes),
    ]


async def _wait_until_all_started(db: BenchDatabase, mailings: int, *, within: float) -> None:
    deadline = time.monotonic() + within
    watcher = observer(db)
    try:
        async with watcher.connect() as connection:
            while True:
                started = await connection.scalar(
                    select(func.count()).where(Mailing.started_at.is_not(None))
                )
                await connection.rollback()
                if started == mailings:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{started} of {mailings} mailings started in {within}s")
                await asyncio.sleep(WATCH_EVERY)
    finally:
        await watcher.dispose()


async def _start_lags(db: BenchDatabase) -> list[tuple[float, float | None]]:
    """(started_at - start_at, first sent_at - start_at) per mailing, in milliseconds."""
    first_sent = (
        select(Report.mailing_id, func.min(Report.sent_at).label("first_sent_at"))
        .group_by(Report.mailing_id)
        .subquery()
    )
    query = select(Mailing.start_at, Mailing.started_at, first_sent.c.first_sent_at).outerjoin(
        first_sent, first_sent.c.mailing_id == Mailing.id
    )
    async with db.sessionmaker() as session:
        rows = (await session.execute(query)).all()

    def ms(later: datetime | None, earlier: datetime) -> float | None:
        return None if later is None else (later - earlier).total_seconds() * 1000

    return [(ms(started, start) or 0.0, ms(sent, start)) for start, started, sent in rows]


async def measure_cutoff(context: Context) -> list[Row]:
    """Two cut-off runs: sends paced by the rate limit, and the engine running flat out."""
    reports = context.sizes.cutoff_reports
    # Paced: at most half can go out before the end however fast the engine is, so sends are
    # in flight at end_at and the rest must expire. Saturated: no limit and more reports than
    # the engine can send in time, so the worker is as busy as it gets when the end comes
    # (the row's cut_off_exercised says whether some were indeed left to expire).
    seconds = context.sizes.cutoff_seconds
    paced = await _cutoff_run(context, "paced", reports=reports, rate_limit=reports / (2 * seconds))
    saturated = await _cutoff_run(
        context,
        "saturated",
        reports=max(reports, int(SATURATED_REPORTS_PER_SECOND * seconds)),
        rate_limit=1_000_000,
    )
    return paced + saturated


async def _cutoff_run(
    context: Context, variant: str, *, reports: int, rate_limit: float
) -> list[Row]:
    lasting = timedelta(seconds=context.sizes.cutoff_seconds)
    sizes = {"reports": reports}
    settings = {"concurrency": str(CUTOFF_CONCURRENCY), "rate_limit": str(rate_limit)}
    workdir = context.workdir / variant
    workdir.mkdir()
    async with fresh_database(context.database, workdir, context.postgres_admin_url) as db:
        await seed_clients(db, reports)
        with Gateway(workdir / "calls.txt", latency_ms=CUTOFF_LATENCY_MS) as gateway:
            async with running_service(db, workdir, gateway, settings) as http:
                message_id = await _create_message(http)
                now = datetime.now(UTC)
                mailing = await _create_mailing(http, message_id, now, now + lasting)
                answered = time.monotonic()
                end_at = datetime.fromisoformat(str(mailing["end_at"]))
                await _wait_until_visible(db, int(str(mailing["id"])), within=60)
                invisible_for = time.monotonic() - answered
                await _wait_until_settled(db, within=lasting.total_seconds() + 60)
        calls = gateway.calls()
        by_status = await _count_by_status(db)
    late = [call.arrived_at - end_at.timestamp() for call in calls]
    after_end = sorted(seconds for seconds in late if seconds >= 0)
    well_after_end = [seconds for seconds in after_end if seconds >= ARRIVAL_TOLERANCE]
    details = {
        "end_after_seconds": lasting.total_seconds(),
        "rate_limit": rate_limit,
        "gateway_calls": len(calls),
        "by_status": by_status,
        # Zero expired means everything went out before the end: the run proved nothing.
        "cut_off_exercised": by_status.get("expired", 0) > 0,
        "ms_after_end_at_of_late_calls": [round(seconds * 1000, 1) for seconds in after_end],
        # The API answers 201 before its transaction commits (see docs/benchmarks.md).
        "mailing_invisible_after_201_ms": round(invisible_for * 1000, 1),
        "latency_ms": CUTOFF_LATENCY_MS,
        "concurrency": CUTOFF_CONCURRENCY,
    }
    left = sum(by_status.get(status, 0) for status in LEFT_TO_DO)
    zero = Target("==", 0, "")
    return [
        Row(
            "cutoff",
            f"{variant}: calls ≥ {ARRIVAL_TOLERANCE * 1000:g} ms after end_at",
            len(well_after_end),
            "",
            zero,
            sizes,
            details=details,
            correctness=True,
        ),
        Row("cutoff", f"{variant}: calls at/after end_at", len(after_end), "", zero, sizes),
        Row(
            "cutoff",
            f"{variant}: duplicate sends",
            duplicates(calls),
            "",
            zero,
            sizes,
            correctness=True,
        ),
        Row("cutoff", f"{variant}: reports not final", left, "", zero, sizes, correctness=True),
    ]


async def _wait_until_visible(db: BenchDatabase, mailing_id: int, *, within: float) -> None:
    """Until the mailing's row can be read by another connection."""
    deadline = time.monotonic() + within
    watcher = observer(db)
    try:
        async with watcher.connect() as connection:
            while not await connection.scalar(select(func.count()).where(Mailing.id == mailing_id)):
                await connection.rollback()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"mailing {mailing_id} still not committed after {within}s")
                await asyncio.sleep(0.005)
    finally:
        await watcher.dispose()


async def _wait_until_settled(db: BenchDatabase, *, within: float) -> None:
    """Until the mailing has finished and no report is pending or in flight."""
    deadline = time.monotonic() + within
    watcher = observer(db)
    try:
        async with watcher.connect() as connection:
            while True:
                unfinished = await connection.scalar(
                    select(func.count()).where(Mailing.finished_at.is_(None))
                )
                left = await connection.scalar(
                    select(func.count()).where(Report.status.in_(LEFT_TO_DO))
                )
                await connection.rollback()
                if unfinished == 0 and left == 0:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not settled after {within:g}s: {left} reports left")
                await asyncio.sleep(WATCH_EVERY)
    finally:
        await watcher.dispose()


async def _count_by_status(db: BenchDatabase) -> dict[str, int]:
    async with db.sessionmaker() as session:
        rows = await session.execute(select(Report.status, func.count()).group_by(Report.status))
        return dict(rows.tuples().all())


START_LAG = Figure(
    "start-lag", "start lag after start_at, mailings created just ahead", measure_start_lag
)
CUTOFF = Figure("cutoff", "calls that reach the gateway at or after end_at", measure_cutoff)
