"""api-cpu: what each of the soak's routes costs the API process, in CPU µs per request.

``sms-sender api`` alone (no engine, so nothing changes under the requests) over a directory of
N clients and a mailing to all of them with its reports made. Each route is asked ``requests``
times, one request at a time over one keep-alive connection, after a few untimed warm-up
requests; the API process's user + system CPU (from /proc, every thread: on SQLite the
database's own work is in it) is read before and after. Unlike a latency, this does not move
much with what else the machine runs, so it is the figure to compare a change before and after
on a busy machine. The figure has no target: issue 17's is the soak's p99, which this CPU
lengthens (every request waits behind the others in one event loop).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx

from benchmarks.databases import (
    FIRST_PHONE,
    create_token,
    fresh_database,
    seed_clients,
    start_mailing_now,
)
from benchmarks.services import HttpService
from benchmarks.suite import Context, Figure, Row

PAGE_LIMIT = 50
WARM_UP_REQUESTS = 20
# Phones created by POST /clients, far from the seeded ones and from other figures'.
NEW_PHONES_FROM = FIRST_PHONE + 800_000_000

Ask = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def _routes(clients: int, mailing_id: int, reports: int) -> dict[str, tuple[Ask, int]]:
    """The soak's routes, each with the status it must answer."""
    cursors = random.Random(17)

    def at_random(limit: int) -> str:
        return str(cursors.randrange(max(1, limit - PAGE_LIMIT)))

    async def clients_page(http: httpx.AsyncClient, number: int) -> httpx.Response:
        return await http.get(
            "/clients", params={"cursor": at_random(clients), "limit": PAGE_LIMIT}
        )

    async def stats(http: httpx.AsyncClient, number: int) -> httpx.Response:
        return await http.get(f"/mailings/{mailing_id}/stats")

    async def reports_page(http: httpx.AsyncClient, number: int) -> httpx.Response:
        params = {"mailing_id": mailing_id, "cursor": at_random(reports), "limit": PAGE_LIMIT}
        return await http.get("/reports", params=params)

    async def mailings(http: httpx.AsyncClient, number: int) -> httpx.Response:
        return await http.get("/mailings")

    async def tags(http: httpx.AsyncClient, number: int) -> httpx.Response:
        return await http.get("/tags")

    async def create(http: httpx.AsyncClient, number: int) -> httpx.Response:
        phone = NEW_PHONES_FROM + WARM_UP_REQUESTS + number
        return await http.post("/clients", json={"phone": str(phone), "tag": "new"})

    return {
        "GET /clients page": (clients_page, 200),
        "GET /mailings/{id}/stats": (stats, 200),
        "GET /reports page": (reports_page, 200),
        "GET /mailings": (mailings, 200),
        "GET /tags": (tags, 200),
        "POST /clients": (create, 201),
    }


async def _cost(
    service: HttpService, http: httpx.AsyncClient, ask: Ask, status: int, requests: int
) -> tuple[float, list[float]]:
    """(API CPU µs per request, wall ms of each) over ``requests`` sequential requests."""
    for number in range(-WARM_UP_REQUESTS, 0):
        (await ask(http, number)).raise_for_status()
    timings = []
    cpu_before = service.cpu_seconds()
    for number in range(requests):
        started = time.perf_counter()
        response = await ask(http, number)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != status:
            raise RuntimeError(f"expected {status}, got {response.status_code}: {response.text}")
    return (service.cpu_seconds() - cpu_before) * 1e6 / requests, timings


async def measure(context: Context) -> list[Row]:
    clients, requests = context.sizes.soak_clients, context.sizes.api_requests
    sizes = {"clients": clients, "requests": requests}
    rows = []
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        await seed_clients(db, clients)
        mailing_id, reports = await start_mailing_now(db, lasting=timedelta(hours=2))
        token = await create_token(db)
        settings = {"database_url": db.url}
        with HttpService("api", settings, context.workdir / "api-cpu.log") as service:
            await service.ready()
            async with service.client(token) as http:
                for route, (ask, status) in _routes(clients, mailing_id, reports).items():
                    cpu_us, timings = await _cost(service, http, ask, status, requests)
                    rows.append(
                        Row(
                            figure="api-cpu",
                            label=f"{route} CPU per request",
                            value=cpu_us,
                            unit="µs",
                            target=None,
                            sizes=sizes,
                            details={"p50_ms": round(statistics.median(timings), 2)},
                        )
                    )
    return rows


FIGURE = Figure("api-cpu", "API process CPU per request of each soak route", measure)
