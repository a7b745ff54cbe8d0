"""Fan-out: the reports of an N-client mailing, materialised by one INSERT … SELECT.

This is what happens at a mailing's start_at (sms_sender.mailings.fan_out.materialise); the
timer covers the statement and its COMMIT, nothing else. The first row is a service mailing;
the ``advertising`` row then makes a second mailing's reports over the same clients, none of
whom gave consent, so every report is ``skipped`` by the consent rule in the same statement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.databases import (
    BenchDatabase,
    add_mailing,
    add_message,
    fresh_database,
    seed_clients,
)
from benchmarks.proc import cpu_seconds
from benchmarks.suite import Context, Figure, Row, Target
from sms_sender.clock import SystemClock
from sms_sender.consent.rules import MailingPurpose
from sms_sender.mailings import fan_out
from sms_sender.mailings.models import MailingStatus


async def measure(context: Context) -> list[Row]:
    clients = context.sizes.fanout_clients
    rows: list[Row] = []
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        seeding = time.perf_counter()
        await seed_clients(db, clients)
        seed_seconds = time.perf_counter() - seeding
        for purpose in (MailingPurpose.SERVICE, MailingPurpose.ADVERTISING):
            created, seconds, cpu = await _fan_out(db, purpose)
            label = "" if purpose == MailingPurpose.SERVICE else purpose.value
            rows += _rows(label, clients, created, seconds, cpu, seed_seconds)
    return rows


async def _fan_out(db: BenchDatabase, purpose: MailingPurpose) -> tuple[int, float, float]:
    """One mailing's reports made: how many, the wall and CPU seconds of statement and commit."""
    now = SystemClock().now()
    async with db.sessionmaker() as session:
        message = await add_message(session, now)
        mailing = await add_mailing(
            session,
            message,
            start_at=now,
            end_at=now + timedelta(days=1),
            status=MailingStatus.RUNNING,
            now=now,
        )
        await session.commit()
        cpu = await _cpu_clock(db, session)
        cpu_before = cpu()
        started = time.perf_counter()
        created = await fan_out.materialise(
            session,
            mailing_id=mailing.id,
            text=message.text,
            operator_codes=[],
            tags=[],
            purpose=purpose,
            now=now,
        )
        await session.commit()
        return created, time.perf_counter() - started, cpu() - cpu_before


async def _cpu_clock(db: BenchDatabase, session: AsyncSession) -> Callable[[], float]:
    """CPU seconds of whatever runs the statement: PostgreSQL's backend, or SQLite in-process.

    Unlike the wall time, this is what the code costs whatever else the machine is doing.
    """
    if db.is_postgresql:
        backend = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
        return lambda: cpu_seconds(backend)
    return time.process_time


def _rows(
    label: str, clients: int, created: int, seconds: float, cpu: float, seed_seconds: float
) -> list[Row]:
    return [
        Row(
            figure="fanout",
            label=label,
            value=seconds,
            unit="s",
            target=Target("<=", 5 * clients / 1_000_000, "s"),  # issue 17 (issue 4: 10 s)
            sizes={"clients": clients},
            details={
                "reports_created": created,
                "reports_per_second": round(created / seconds),
                "database_cpu_seconds": round(cpu, 2),
                "seed_seconds": round(seed_seconds, 2),
            },
        ),
        Row(
            figure="fanout",
            label=f"{label} reports created".strip(),
            value=created,
            unit="",
            target=Target("==", clients, ""),
            sizes={"clients": clients},
            correctness=True,
        ),
    ]


FIGURE = Figure("fanout", "reports materialised for an N-client mailing", measure)
