"""stats: what a mailing's stats cost when every one of its N reports was skipped.

The case issue 17's counters must keep cheap: an advertising mailing to N clients of whom a
third opted out and the rest never consented, so all its reports are ``skipped`` by one of two
reasons, and the console's mailing page asks its stats (by status, and skipped by reason)
every 2 s. The reports are made by the fan-out and the planner statistics refreshed (as
``start_mailing_now`` does); then ``mailings.stats.mailing_stats`` is called in-process
``REQUESTS`` times, each in its own session on one connection, and the CPU of what ran it is
read before and after: this process (SQLite runs in it) plus, on PostgreSQL, the connection's
backend and the parallel workers it started (the postmaster's reaped children; an autovacuum
worker ending meanwhile would count too). No HTTP: the API's own per-request cost is the
api-cpu figure's. The details say how many statements per request read ``reports`` (0 since
20261202_skipcounts_0001) and check the answer against N.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from benchmarks.databases import (
    BenchDatabase,
    add_mailing,
    add_message,
    analyse,
    fresh_database,
    seed_clients,
)
from benchmarks.proc import cpu_seconds, parent_pid, reaped_children_cpu_seconds
from benchmarks.suite import Context, Figure, Row, Target
from sms_sender.clock import SystemClock
from sms_sender.consent.rules import MailingPurpose
from sms_sender.mailings import fan_out
from sms_sender.mailings.models import MailingStatus
from sms_sender.mailings.stats import mailing_stats

REQUESTS = 20
WARM_UP_REQUESTS = 3


async def measure(context: Context) -> list[Row]:
    clients = context.sizes.fanout_clients
    sizes = {"clients": clients}
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        await seed_clients(db, clients)
        mailing_id = await _all_skipped_mailing(db)
        async with db.engine.connect() as connection:
            cpu_us, timings, over_reports, answer = await _ask(db, connection, mailing_id)
    skipped = sum(answer["skipped_by_reason"].values())
    return [
        Row(
            figure="stats",
            label="all-skipped mailing: CPU per request",
            value=cpu_us,
            unit="µs",
            target=None,
            sizes=sizes,
            details={
                "p50_ms": round(statistics.median(timings), 2),
                "statements_over_reports_per_request": over_reports / REQUESTS,
                "skipped_by_reason": answer["skipped_by_reason"],
            },
        ),
        Row(
            figure="stats",
            label="all-skipped mailing: skipped counted",
            value=skipped,
            unit="",
            target=Target("==", clients, ""),
            sizes=sizes,
            correctness=True,
        ),
    ]


async def _all_skipped_mailing(db: BenchDatabase) -> int:
    """An advertising mailing started over every client: a third opted out, none consented."""
    now = SystemClock().now()
    async with db.sessionmaker() as session:
        await session.execute(text("UPDATE clients SET opted_out_at = created_at WHERE id % 3 = 0"))
        message = await add_message(session, now)
        mailing = await add_mailing(
            session,
            message,
            start_at=now,
            end_at=now + timedelta(days=1),
            status=MailingStatus.RUNNING,
            now=now,
        )
        await fan_out.materialise(
            session,
            mailing_id=mailing.id,
            text=message.text,
            operator_codes=[],
            tags=[],
            purpose=MailingPurpose.ADVERTISING,
            now=now,
        )
        await session.commit()
    await analyse(db)
    return mailing.id


async def _ask(
    db: BenchDatabase, connection: AsyncConnection, mailing_id: int
) -> tuple[float, list[float], int, dict[str, Any]]:
    """(CPU µs per request, wall ms of each, statements over reports, the last answer)."""
    backend = (
        int(await connection.scalar(text("SELECT pg_backend_pid()")) or 0)
        if db.is_postgresql
        else None
    )
    await connection.rollback()

    def cpu() -> float:
        used = time.process_time()
        if backend is None:
            return used
        return used + cpu_seconds(backend) + reaped_children_cpu_seconds(parent_pid(backend))

    over_reports = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal over_reports
        over_reports += "FROM reports" in statement

    answer: dict[str, Any] = {}
    timings = []
    for number in range(-WARM_UP_REQUESTS, REQUESTS):
        if number == 0:
            event.listen(db.engine.sync_engine, "before_cursor_execute", count)
            cpu_before = cpu()
        started = time.perf_counter()
        async with AsyncSession(bind=connection) as session:
            answer = (await mailing_stats(session, mailing_id)).model_dump()
            await session.rollback()
        if number >= 0:
            timings.append((time.perf_counter() - started) * 1000)
    cpu_us = (cpu() - cpu_before) * 1e6 / REQUESTS
    event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    return cpu_us, timings, over_reports, answer


FIGURE = Figure("stats", "a mailing's stats when all N of its reports were skipped", measure)
