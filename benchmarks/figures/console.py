"""The admin console's pages through the real HTTP stack, with N clients and N reports.

Two mailings to every client are running (their N reports each materialised, nothing sent:
the service runs without the engine, so the figures are of the pages alone); the pages show
the first. A signed-in admin asks each page in turn, sequentially over one keep-alive
connection; a row per page gives its p95.
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import timedelta

import httpx
from sqlalchemy import text

from benchmarks.databases import BenchDatabase, fresh_database, seed_clients, start_mailing_now
from benchmarks.services import HttpService
from benchmarks.suite import Context, Figure, Row, Target, percentile
from sms_sender.auth import users
from sms_sender.auth.models import Role
from sms_sender.clock import SystemClock

PASSWORD = "benchmark console password"
WARM_UP = 5
MAX_REQUESTS_PER_PAGE = 200


async def _admin(db: BenchDatabase) -> None:
    async with db.sessionmaker() as session:
        await users.create_local(session, "bench", Role.ADMIN, PASSWORD, SystemClock().now())
        await session.commit()


async def _last_report_id(db: BenchDatabase, mailing_id: int) -> int:
    async with db.engine.connect() as connection:
        statement = text("SELECT max(id) FROM reports WHERE mailing_id = :mailing_id")
        return int((await connection.execute(statement, {"mailing_id": mailing_id})).scalar_one())


async def _sign_in(http: httpx.AsyncClient) -> None:
    form = await http.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    answer = await http.post(
        "/admin/login",
        data={"name": "bench", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text[:200]}")


async def _timings(http: httpx.AsyncClient, path: str, count: int) -> list[float]:
    for _ in range(WARM_UP):
        (await http.get(path)).raise_for_status()
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = await http.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings


async def measure_pages(context: Context) -> list[Row]:
    clients = context.sizes.api_clients
    count = min(context.sizes.api_requests, MAX_REQUESTS_PER_PAGE)
    sizes = {"clients": clients, "reports": clients, "requests": count}
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        await seed_clients(db, clients)
        mailing_id, _reports = await start_mailing_now(db, lasting=timedelta(hours=2))
        # A second mailing after it: a page of the first that reads on past its end (an index
        # in id order but not by mailing) pays for every report of this one.
        await start_mailing_now(db, lasting=timedelta(hours=2))
        last_report_id = await _last_report_id(db, mailing_id)
        await _admin(db)
        pages = {
            "dashboard": "/admin",
            "dashboard figures": "/admin/dashboard.json",
            "dashboard activity": "/admin/activity.json",
            "clients": "/admin/clients",
            "clients, far page": f"/admin/clients?cursor={clients - 60}",
            "clients by phone prefix": "/admin/clients?phone_prefix=7999",
            "clients by a prefix everyone has": "/admin/clients?phone_prefix=7",
            "messages": "/admin/messages",
            "mailings": "/admin/mailings",
            "new mailing": "/admin/mailings/new",
            "mailing": f"/admin/mailings/{mailing_id}",
            "mailing, last page": f"/admin/mailings/{mailing_id}?cursor={last_report_id - 20}",
            "mailing progress": f"/admin/mailings/{mailing_id}/progress.json",
            "reports by status": f"/admin/mailings/{mailing_id}?report_status=pending",
        }
        service = HttpService("api", {"database_url": db.url}, context.workdir / "console.log")
        rows = []
        with service:
            await service.ready()
            async with httpx.AsyncClient(base_url=service.base_url, timeout=600) as http:
                await _sign_in(http)
                for label, path in pages.items():
                    timings = await _timings(http, path, count)
                    rows.append(
                        Row(
                            figure="console",
                            label=f"{label} p95",
                            value=percentile(timings, 0.95),
                            unit="ms",
                            target=Target("<=", 100, "ms"),
                            sizes=sizes,
                            details={
                                "path": path,
                                "p50_ms": round(statistics.median(timings), 2),
                                "max_ms": round(max(timings), 2),
                            },
                        )
                    )
    return rows


FIGURE = Figure("console", "Each console page's p95 with N clients and N reports", measure_pages)
