"""Soak: N API clients doing a realistic mix for a while as a large mailing is sent.

A mailing to every seeded client runs through the http provider to the benchmark gateway on
127.0.0.1, at a set rate, on both databases twice: as people run the simple set-up
(``sms-sender serve``: the API, and the engine in a child process; both are sampled) and as it
scales out (``sms-sender api`` + ``worker``).
Meanwhile each API client loops over a mix of what the admin console and scripts ask: a page of
clients at a random cursor, the mailing's stats, a page of its reports, the mailings list with
their counts, GET /tags, and a new client. Reported: requests and errors, p50/p99 per route,
every process's RSS over time (sampled each second), messages sent and ids accepted twice.
At the end the mailing is cancelled through the API, as an operator would, and every report
must reach a final status within ``SETTLE_WITHIN`` seconds. Errors, phones sent twice and
reports left unsettled are correctness rows: any of them fails the run (``make bench-smoke``
too); a long p99 never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from benchmarks.databases import (
    FIRST_PHONE,
    BenchDatabase,
    create_token,
    fresh_database,
    seed_clients,
    start_mailing_now,
)
from benchmarks.delivery import LEFT_TO_DO, observer, wait_until_done
from benchmarks.gateway import Gateway, duplicates
from benchmarks.proc import cpu_seconds, rss_bytes
from benchmarks.services import HttpService, ServiceProcess, worker_process
from benchmarks.suite import Context, Figure, Row, Target, percentile
from sms_sender.reports.models import Report

PAGE_LIMIT = 50
NEW_PHONES_FROM = FIRST_PHONE + 700_000_000
RSS_EVERY = 1.0  # seconds between samples of each process's resident memory
TIMEOUT = 30.0  # a request slower than this counts as an error
SETTLE_WITHIN = 30.0  # seconds after the cancel for every report to reach a final status


@dataclass
class Traffic:
    """Latencies (ms) per route and the failures, as the API clients saw them."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)

    def failed(self, route: str, why: str) -> None:
        self.errors[route] += 1
        if len(self.examples) < 5:
            self.examples.append(f"{route}: {why}"[:300])


Request = Callable[[httpx.AsyncClient, random.Random], Awaitable[httpx.Response]]


def _routes(clients: int, mailing_id: int, reports: int, number: int) -> dict[str, Request]:
    """The mix, each route once per round: what a console screen and a script ask."""
    made = iter(range(NEW_PHONES_FROM + number * 1_000_000, NEW_PHONES_FROM + 10**9))

    def at_random(limit: int, rng: random.Random) -> str:
        return str(rng.randrange(max(1, limit - PAGE_LIMIT)))

    return {
        "GET /clients page": lambda http, rng: http.get(
            "/clients", params={"cursor": at_random(clients, rng), "limit": PAGE_LIMIT}
        ),
        "GET /mailings/{id}/stats": lambda http, rng: http.get(f"/mailings/{mailing_id}/stats"),
        "GET /reports page": lambda http, rng: http.get(
            "/reports",
            params={
                "mailing_id": mailing_id,
                "cursor": at_random(reports, rng),
                "limit": PAGE_LIMIT,
            },
        ),
        "GET /mailings": lambda http, rng: http.get("/mailings"),
        "GET /tags": lambda http, rng: http.get("/tags"),
        "POST /clients": lambda http, rng: http.post(
            "/clients", json={"phone": str(next(made)), "tag": "soak"}
        ),
    }


async def _api_client(
    http: httpx.AsyncClient, routes: dict[str, Request], traffic: Traffic, until: float, seed: int
) -> None:
    rng = random.Random(seed)
    order = list(routes)
    while time.monotonic() < until:
        rng.shuffle(order)
        for route in order:
            started = time.perf_counter()
            try:
                response = await routes[route](http, rng)
            except httpx.HTTPError as error:
                traffic.failed(route, repr(error))
                continue
            traffic.latencies[route].append((time.perf_counter() - started) * 1000)
            if not response.is_success:
                traffic.failed(route, f"{response.status_code} {response.text[:200]}")


async def _sample_rss(
    pids: dict[str, int], samples: dict[str, list[float]], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        for name, pid in pids.items():
            samples[name].append(round(rss_bytes(pid) / 2**20, 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RSS_EVERY)


# How the service runs: serve (the API starts the engine as its child) or api + worker.
SERVE, APART = "serve", "api + worker"
LAYOUTS = {"sqlite": (SERVE, APART), "postgresql": (SERVE, APART)}


def _services(
    db: BenchDatabase, gateway: Gateway, context: Context, layout: str
) -> tuple[HttpService, dict[str, ServiceProcess]]:
    settings = {
        "database_url": db.url,
        "provider": "http",
        "http_url": gateway.url,
        "http_token": gateway.token,
        "rate_limit": str(context.sizes.soak_rate),
    }
    workdir: Path = context.workdir
    if layout == APART:
        api = HttpService("api", settings, workdir / "soak-api.log")
        worker = worker_process(settings, workdir / "soak-worker.log", instant=False)
        return api, {"api": api, "worker": worker}
    serve = HttpService("serve", settings, workdir / "soak-serve.log")
    return serve, {"serve": serve}


def _pids(processes: dict[str, ServiceProcess]) -> dict[str, int]:
    """Each process to sample, and the engine ``serve`` runs in a child process."""
    pids = {name: process.pid for name, process in processes.items()}
    for name, process in processes.items():
        for child in process.children():
            pids[f"{name} engine"] = child
    return pids


async def measure(context: Context) -> list[Row]:
    rows = []
    for layout in LAYOUTS[context.database]:
        rows += await _soak(context, layout)
    return rows


async def _soak(context: Context, layout: str) -> list[Row]:
    sizes = context.sizes
    clients, seconds, api_clients = sizes.soak_clients, sizes.soak_seconds, sizes.soak_api_clients
    shown = {"clients": clients, "seconds": seconds, "api_clients": api_clients}
    traffic = Traffic()
    rss: dict[str, list[float]] = defaultdict(list)
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        await seed_clients(db, clients)
        mailing_id, reports = await start_mailing_now(db, lasting=timedelta(hours=2))
        token = await create_token(db)
        with Gateway(context.workdir / f"soak-gateway-{time.time_ns()}.txt") as gateway:
            api, processes = _services(db, gateway, context, layout)
            with contextlib.ExitStack() as running:
                for process in processes.values():
                    running.enter_context(process)
                await api.ready()
                stop_sampling = asyncio.Event()
                pids = _pids(processes)
                sampler = asyncio.create_task(_sample_rss(pids, rss, stop_sampling))
                cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                until = time.monotonic() + seconds
                https = [api.client(token, TIMEOUT) for _ in range(api_clients)]
                try:
                    await asyncio.gather(
                        *(
                            _api_client(
                                http, _routes(clients, mailing_id, reports, n), traffic, until, n
                            )
                            for n, http in enumerate(https)
                        )
                    )
                    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
                    await _cancel(https[0], mailing_id, traffic)
                    await wait_until_done(
                        db, mailing_id, list(processes.values()), within=SETTLE_WITHIN, partial=True
                    )
                finally:
                    for http in https:
                        await http.aclose()
                    stop_sampling.set()
                    await sampler
                for process in processes.values():
                    process.check_alive()
        calls = gateway.calls()
        by_status = await _count_by_status(db, mailing_id)
    rows = _rows(layout, traffic, rss, len(calls), duplicates(calls), shown)
    return [
        *rows,
        *_cpu_rows(layout, traffic, cpu, shown),
        _unsettled_row(layout, by_status, shown),
    ]


def _cpu_rows(
    layout: str, traffic: Traffic, cpu: dict[str, float], sizes: dict[str, int]
) -> list[Row]:
    """Each process's CPU over the API clients' run, per API request (the engine's too)."""
    requests = sum(len(timings) for timings in traffic.latencies.values())
    return [
        Row(
            figure="soak",
            label=f"{layout}: {name} CPU per request",
            value=seconds * 1e6 / max(requests, 1),
            unit="µs",
            target=None,
            sizes=sizes,
            details={"cpu_seconds": round(seconds, 2), "requests": requests},
        )
        for name, seconds in cpu.items()
    ]


async def _cancel(http: httpx.AsyncClient, mailing_id: int, traffic: Traffic) -> None:
    """Cancel the mailing as an operator would; one that already finished answers 409."""
    route = "POST /mailings/{id}/cancel"
    try:
        response = await http.post(f"/mailings/{mailing_id}/cancel")
    except httpx.HTTPError as error:
        traffic.failed(route, repr(error))
        return
    if not response.is_success and response.status_code != 409:
        traffic.failed(route, f"{response.status_code} {response.text[:200]}")


async def _count_by_status(db: BenchDatabase, mailing_id: int) -> dict[str, int]:
    watcher = observer(db)
    try:
        async with watcher.connect() as connection:
            rows = await connection.execute(
                select(Report.status, func.count())
                .where(Report.mailing_id == mailing_id)
                .group_by(Report.status)
            )
            return {str(status): int(count) for status, count in rows}
    finally:
        await watcher.dispose()


def _unsettled_row(layout: str, by_status: dict[str, int], sizes: dict[str, int]) -> Row:
    return Row(
        figure="soak",
        label=f"{layout}: reports not final after the cancel",
        value=sum(by_status.get(status, 0) for status in LEFT_TO_DO),
        unit="",
        target=Target("==", 0, ""),
        sizes=sizes,
        details={"by_status": by_status, "settle_within_s": SETTLE_WITHIN},
        correctness=True,
    )


def _rows(
    layout: str,
    traffic: Traffic,
    rss: dict[str, list[float]],
    sent: int,
    twice: int,
    sizes: dict[str, int],
) -> list[Row]:
    rows = [
        Row(
            figure="soak",
            label=f"{layout}: {route} p99",
            value=percentile(timings, 0.99),
            unit="ms",
            target=Target("<=", 100, "ms"),
            sizes=sizes,
            details={
                "requests": len(timings),
                "errors": traffic.errors.get(route, 0),
                "p50_ms": round(statistics.median(timings), 2),
                "max_ms": round(max(timings), 2),
            },
        )
        for route, timings in sorted(traffic.latencies.items())
    ]
    requests = sum(len(timings) for timings in traffic.latencies.values())
    rows.append(
        Row(
            figure="soak",
            label=f"{layout}: errors",
            value=sum(traffic.errors.values()),
            unit="",
            target=Target("==", 0, ""),
            sizes=sizes,
            details={"requests": requests, "examples": traffic.examples},
            correctness=True,
        )
    )
    for name, samples in rss.items():
        rows.append(
            Row(
                figure="soak",
                label=f"{layout}: {name} RSS growth",
                value=_growth(samples),
                unit="MB",
                target=Target("<=", 20, "MB"),
                sizes=sizes,
                details={"rss_mb_each_second": samples, "max_mb": max(samples, default=0)},
            )
        )
    rows.append(
        Row(
            figure="soak",
            label=f"{layout}: messages sent",
            value=sent,
            unit="",
            target=None,
            sizes=sizes,
        )
    )
    rows.append(
        Row(
            figure="soak",
            label=f"{layout}: phones sent twice",
            value=twice,
            unit="",
            target=Target("==", 0, ""),
            sizes=sizes,
            correctness=True,
        )
    )
    return rows


def _growth(samples: list[float]) -> float:
    """RSS of the last fifth minus that of the second fifth (the first is start-up)."""
    if len(samples) < 5:
        return 0.0
    fifth = len(samples) // 5
    return statistics.mean(samples[-fifth:]) - statistics.mean(samples[fifth : 2 * fifth])


FIGURE = Figure("soak", "API p99 per route while a large mailing is sent", measure)
