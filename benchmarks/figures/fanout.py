"""Fan-out: the reports of an N-client mailing, materialised by one INSERT … SELECT.

This is what happens at a mailing's start_at (sms_sender.mailings.fan_out.materialise); the
timer covers the statement and its COMMIT, nothing else. The first row is a service mailing;
the ``advertising`` row then makes a second mailing's reports over the same clients, none of
whom gave consent, so every report is ``skipped`` by the consent rule in the same statement.
Being the second mailing over the same clients is what makes that row dearer on PostgreSQL, not
the consent rule: its reports go into the middle of the (client_id, mailing_id) and phone
indexes, beside the first mailing's, where the first mailing's were appended at their right
edge (docs/benchmarks.md, "fanout").

Besides the wall time, each row carries the database's CPU seconds and, on PostgreSQL, the bytes
of WAL written: what the statement costs whatever else the machine is doing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
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
            made = await _fan_out(db, purpose)
            label = "" if purpose == MailingPurpose.SERVICE else purpose.value
            rows += _rows(label, clients, made, seed_seconds)
    return rows


@dataclass(frozen=True)
class _Made:
    """One fan-out: reports made, wall and database CPU seconds, WAL bytes (PostgreSQL)."""

    reports: int
    seconds: float
    cpu_seconds: float
    wal_bytes: int | None


async def _fan_out(db: BenchDatabase, purpose: MailingPurpose) -> _Made:
    """One mailing's reports made, measured over the statement and its commit."""
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
        wal_before = await _wal_position(db, session)
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
        seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_before
        wal_bytes = await _wal_since(db, session, wal_before)
        await session.commit()
        return _Made(created, seconds, cpu_seconds, wal_bytes)


async def _cpu_clock(db: BenchDatabase, session: AsyncSession) -> Callable[[], float]:
    """CPU seconds of whatever runs the statement: PostgreSQL's backend, or SQLite in-process.

    Unlike the wall time, this is what the code costs whatever else the machine is doing.
    """
    if db.is_postgresql:
        backend = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
        return lambda: cpu_seconds(backend)
    return time.process_time


async def _wal_position(db: BenchDatabase, session: AsyncSession) -> int | None:
    """PostgreSQL's WAL insert position now, in bytes (None on SQLite)."""
    if not db.is_postgresql:
        return None
    return int(await session.scalar(text(_WAL_BYTES)) or 0)


async def _wal_since(db: BenchDatabase, session: AsyncSession, position: int | None) -> int | None:
    """WAL bytes the cluster wrote since ``position``: the fan-out's, as nothing else runs."""
    now = await _wal_position(db, session)
    return None if now is None or position is None else now - position


_WAL_BYTES = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"


def _rows(label: str, clients: int, made: _Made, seed_seconds: float) -> list[Row]:
    details: dict[str, object] = {
        "reports_created": made.reports,
        "reports_per_second": round(made.reports / made.seconds),
        "database_cpu_seconds": round(made.cpu_seconds, 2),
        "seed_seconds": round(seed_seconds, 2),
    }
    if made.wal_bytes is not None:
        details["wal_megabytes"] = round(made.wal_bytes / 1_000_000)
    return [
        Row(
            figure="fanout",
            label=label,
            value=made.seconds,
            unit="s",
            target=Target("<=", 5 * clients / 1_000_000, "s"),  # issue 17 (issue 4: 10 s)
            sizes={"clients": clients},
            details=details,
        ),
        Row(
            figure="fanout",
            label=f"{label} reports created".strip(),
            value=made.reports,
            unit="",
            target=Target("==", clients, ""),
            sizes={"clients": clients},
            correctness=True,
        ),
    ]


FIGURE = Figure("fanout", "reports materialised for an N-client mailing", measure)
