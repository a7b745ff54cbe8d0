"""Fan-out: the reports of an N-client mailing, materialised by one INSERT … SELECT.

This is what happens at a mailing's start_at (sms_sender.reports.repository.materialise); the
timer covers the statement and its COMMIT, nothing else.
"""

from __future__ import annotations

import time
from datetime import timedelta

from benchmarks.databases import add_mailing, add_message, fresh_database, seed_clients
from benchmarks.suite import Context, Figure, Row, Target
from sms_sender.clock import SystemClock
from sms_sender.mailings.models import MailingStatus
from sms_sender.reports import repository as reports


async def measure(context: Context) -> list[Row]:
    clients = context.sizes.fanout_clients
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        seeding = time.perf_counter()
        await seed_clients(db, clients)
        seed_seconds = time.perf_counter() - seeding
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
            started = time.perf_counter()
            created = await reports.materialise(
                session,
                mailing_id=mailing.id,
                text=message.text,
                operator_codes=[],
                tags=[],
                now=now,
            )
            await session.commit()
            seconds = time.perf_counter() - started
    return [
        Row(
            figure="fanout",
            label="",
            value=seconds,
            unit="s",
            target=Target("<=", 10 * clients / 1_000_000, "s"),
            sizes={"clients": clients},
            details={
                "reports_created": created,
                "reports_per_second": round(created / seconds),
                "seed_seconds": round(seed_seconds, 2),
            },
        ),
        Row(
            figure="fanout",
            label="reports created",
            value=created,
            unit="",
            target=Target("==", clients, ""),
            sizes={"clients": clients},
            correctness=True,
        ),
    ]


FIGURE = Figure("fanout", "reports materialised for an N-client mailing", measure)
