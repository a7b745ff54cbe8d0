"""The client directory through the real HTTP stack: ``sms-sender api`` under uvicorn.

* ``csv-import``: N clients in one streamed ``text/csv`` body (chunked, never held whole in
  memory on either side), timed from the first byte sent to the answer.
* ``api``: with N clients in the table, ``POST /clients`` one at a time (p50) and
  ``GET /clients?cursor=…`` at random cursors anywhere in the list (p99). Requests are sequential
  over one keep-alive connection, so the figures are latencies, not throughput.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
from sqlalchemy import text

from benchmarks.databases import (
    FIRST_PHONE,
    BenchDatabase,
    count_rows,
    create_token,
    fresh_database,
    seed_clients,
)
from benchmarks.proc import child_pids, cpu_seconds
from benchmarks.services import HttpService
from benchmarks.suite import Context, Figure, Row, Target, percentile

CSV_HEADER = b"phone,operator_code,tag,timezone\n"
CSV_CHUNK_ROWS = 4_000
# Phones created by the POST figure, far from the seeded ones.
NEW_PHONES_FROM = FIRST_PHONE + 500_000_000
PAGE_LIMIT = 50
WARM_UP_REQUESTS = 20


def _api(db: BenchDatabase, context: Context, log_name: str) -> HttpService:
    return HttpService("api", {"database_url": db.url}, context.workdir / log_name)


def _http(service: HttpService, token: str) -> httpx.AsyncClient:
    return service.client(token, timeout=600)


async def _csv_rows(count: int) -> AsyncIterator[bytes]:
    """The CSV in chunks of a few thousand rows, as a file read from disk would arrive."""
    yield CSV_HEADER
    for start in range(1, count + 1, CSV_CHUNK_ROWS):
        stop = min(start + CSV_CHUNK_ROWS, count + 1)
        yield b"".join(
            b"%d,,tag%d,Europe/Moscow\n" % (FIRST_PHONE + number, number % 10)
            for number in range(start, stop)
        )


async def _cluster_cpu(db: BenchDatabase) -> Callable[[], dict[int, float]]:
    """CPU seconds so far of each process of PostgreSQL's cluster (postmaster and children).

    What the server spends on the import, whatever else the machine runs; SQLite runs inside
    the API process, whose CPU is measured apart.
    """
    if not db.is_postgresql:
        return dict
    async with db.engine.connect() as connection:
        backend = int(await connection.scalar(text("SELECT pg_backend_pid()")) or 0)
    postmaster = _parent_pid(backend)

    def snapshot() -> dict[int, float]:
        times = {}
        for pid in [postmaster, *child_pids(postmaster)]:
            with contextlib.suppress(OSError):
                times[pid] = cpu_seconds(pid)
        return times

    return snapshot


async def _wal_bytes(db: BenchDatabase) -> int:
    """PostgreSQL's WAL insert position in bytes (0 on SQLite): what an import wrote, as
    nothing else runs in the throwaway cluster, whatever the machine's load."""
    if not db.is_postgresql:
        return 0
    async with db.engine.connect() as connection:
        position = await connection.scalar(
            text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        )
    return int(position or 0)


def _parent_pid(pid: int) -> int:
    # The command name (field 2) may hold spaces; the parent pid is the field after state.
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


async def measure_csv_import(context: Context) -> list[Row]:
    clients = context.sizes.import_clients
    sizes = {"clients": clients}
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        token = await create_token(db)
        with _api(db, context, "csv-import-api.log") as service:
            await service.ready()
            async with _http(service, token) as http:
                cluster_cpu = await _cluster_cpu(db)
                wal_before = await _wal_bytes(db)
                cluster_before = cluster_cpu()
                cpu_before = service.cpu_seconds()
                started = time.perf_counter()
                response = await http.post(
                    "/clients/import",
                    content=_csv_rows(clients),
                    headers={"Content-Type": "text/csv"},
                )
                seconds = time.perf_counter() - started
            # What the code costs, whatever else the machine is doing (the wall time is not).
            api_cpu_seconds = service.cpu_seconds() - cpu_before
            # A backend that ends during the import is not counted (the API keeps its pool).
            database_cpu_seconds = sum(
                seconds - cluster_before.get(pid, 0.0) for pid, seconds in cluster_cpu().items()
            )
            peak_rss = service.peak_rss_bytes()
            wal_after = await _wal_bytes(db)
        response.raise_for_status()
        outcome = response.json()
        stored = await count_rows(db, "clients")
    return [
        Row(
            figure="csv-import",
            label="",
            value=seconds,
            unit="s",
            target=Target("<=", 10 * clients / 1_000_000, "s"),  # issue 17 (issue 4: 30 s)
            sizes=sizes,
            details={
                "clients_per_second": round(clients / seconds),
                "imported": outcome["imported"],
                "failed": outcome["failed"],
                "api_peak_rss_mb": round(peak_rss / 2**20, 1),
                "api_cpu_seconds": round(api_cpu_seconds, 2),
                **(
                    {
                        "database_cpu_seconds": round(database_cpu_seconds, 2),
                        "wal_megabytes": round((wal_after - wal_before) / 1_000_000),
                    }
                    if db.is_postgresql
                    else {}
                ),
            },
        ),
        Row(
            figure="csv-import",
            label="clients stored",
            value=stored,
            unit="",
            target=Target("==", clients, ""),
            sizes=sizes,
            correctness=True,
        ),
    ]


async def _latencies(
    count: int, request: Callable[[int], Awaitable[httpx.Response]], expected_status: int
) -> list[float]:
    """Milliseconds of ``count`` sequential requests, after a few untimed warm-up ones."""
    for number in range(-WARM_UP_REQUESTS, 0):
        (await request(number)).raise_for_status()
    timings = []
    for number in range(count):
        started = time.perf_counter()
        response = await request(number)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != expected_status:
            raise RuntimeError(
                f"expected {expected_status}, got {response.status_code}: {response.text[:200]}"
            )
    return timings


def _spread(timings: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p90_ms": round(percentile(timings, 0.90), 2),
        "p99_ms": round(percentile(timings, 0.99), 2),
        "max_ms": round(max(timings), 2),
    }


async def measure_api(context: Context) -> list[Row]:
    clients, requests = context.sizes.api_clients, context.sizes.api_requests
    sizes = {"clients": clients, "requests": requests}
    cursors = random.Random(4).sample(range(clients - PAGE_LIMIT), requests + WARM_UP_REQUESTS)
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        await seed_clients(db, clients)
        token = await create_token(db)
        with _api(db, context, "api.log") as service:
            await service.ready()
            async with _http(service, token) as http:

                async def create(number: int) -> httpx.Response:
                    phone = NEW_PHONES_FROM + WARM_UP_REQUESTS + number
                    return await http.post("/clients", json={"phone": str(phone), "tag": "new"})

                async def read_page(number: int) -> httpx.Response:
                    cursor = cursors[number + WARM_UP_REQUESTS]
                    response = await http.get(
                        "/clients", params={"cursor": str(cursor), "limit": PAGE_LIMIT}
                    )
                    if response.is_success and len(response.json()["items"]) != PAGE_LIMIT:
                        raise RuntimeError(f"a page after {cursor} is not full: {response.text}")
                    return response

                cpu_before = service.cpu_seconds()
                posts = await _latencies(requests, create, 201)
                # What a POST costs the API process (SQLite's statements run in it), whatever
                # else the machine is doing; the warm-up requests are in it too.
                post_cpu_ms = (
                    (service.cpu_seconds() - cpu_before) * 1000 / (requests + WARM_UP_REQUESTS)
                )
                pages = await _latencies(requests, read_page, 200)
    return [
        Row(
            figure="api",
            label="POST /clients p50",
            value=statistics.median(posts),
            unit="ms",
            target=Target("<=", 2, "ms"),  # issue 17 (issue 4: 5 ms)
            sizes=sizes,
            details={**_spread(posts), "api_cpu_ms_per_post": round(post_cpu_ms, 3)},
        ),
        Row(
            figure="api",
            label="GET /clients page p99",
            value=percentile(pages, 0.99),
            unit="ms",
            target=Target("<=", 10, "ms"),  # issue 17 (issue 4: 20 ms)
            sizes=sizes,
            details={**_spread(pages), "page_limit": PAGE_LIMIT},
        ),
    ]


CSV_IMPORT = Figure("csv-import", "CSV import of N clients through the API", measure_csv_import)
API = Figure("api", "POST /clients p50 and GET /clients page p99 with N clients", measure_api)
