"""An opt-out (or cancel) closing reports and a worker handing some of them over never deadlock.

Both are UPDATEs of several pending reports, and on PostgreSQL each locks its rows one by one
in the order its plan reads them. Found in CI: the opt-out's statement read the rows in the
table's physical order, the hand-over's in id order, each came to hold a row the other waited
for, and PostgreSQL cancelled the opt-out (`deadlock detected`; the API would have answered
500). Now the worker never waits for a report's row lock: a report someone else holds is being
closed or taken over, and the worker leaves it (dialects.not_locked_by_others).

The first test pins the plans that made the orders differ (a sequential scan for the closing,
the primary key for the hand-over), makes the lower report physically last, and holds the
higher one from a third connection, so that the closing waits for it first; the old hand-over
then held the lower and waited for the higher behind the closing, which in turn wanted the
lower: a deadlock.
SQLite has one writer at a time and no row locks: nothing to wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sms_sender.consent.rules import SkipReason
from sms_sender.dispatch import repository
from sms_sender.reports import lifecycle
from sms_sender.reports import repository as reports_repository
from sms_sender.reports.models import Report
from tests.arrange import Arrange
from tests.conftest import FakeClock
from tests.dispatch.conftest import eventually

pytestmark = pytest.mark.usefixtures("clean_db")

OWNER = "host-a:1:0000000a"


async def _backend(connection: AsyncConnection, *settings: str) -> int:
    for setting in settings:
        await connection.execute(text(f"SET {setting}"))
    pid = int(await connection.scalar(text("SELECT pg_backend_pid()")))
    await connection.commit()  # SET (not LOCAL) outlives it
    return pid


async def _waits_for_a_row(database: AsyncEngine, pid: int) -> bool:
    async with database.connect() as connection:
        waiting = await connection.scalar(
            text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted"), {"pid": pid}
        )
    return bool(waiting)


async def _arrange(arrange: Arrange, clean_db: AsyncEngine, clock: FakeClock) -> tuple[int, ...]:
    """Two pending reports leased to the worker, the lower one last in physical order."""
    client_ids = await arrange.many_clients(2)
    mailing_id = await arrange.mailing()
    lower, higher = [report.id for report in await arrange.reports(mailing_id)]
    async with clean_db.begin() as connection:
        # Leased as a claim leaves them; then the lower one is written again, so that its
        # newest version is the last in the table's physical order.
        await connection.execute(
            update(Report).values(
                lease_owner=OWNER, lease_expires_at=clock.now() + timedelta(minutes=1)
            )
        )
        await connection.execute(
            update(Report).where(Report.id == lower).values(updated_at=Report.updated_at)
        )
        physical = await connection.scalars(select(Report.id).order_by(text("ctid")))
        assert list(physical) == [higher, lower]
    return mailing_id, *client_ids, lower, higher


async def _hand_over(worker: AsyncConnection, report_ids: list[int], clock: FakeClock) -> list[int]:
    now = clock.now()
    async with worker.begin():
        marked = await repository.hand_over(
            worker,
            report_ids,
            owner=OWNER,
            provider="fake",
            now=now,
            lease_until=now + timedelta(minutes=1),
        )
        await repository.release(worker, [i for i in report_ids if i not in marked], owner=OWNER)
    return sorted(marked)


async def _without_waiting(
    hand_over: Coroutine[Any, Any, list[int]], holder: AsyncConnection
) -> list[int]:
    """The hand-over's result, which must come while ``holder`` still holds its row."""
    task = asyncio.create_task(hand_over)
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:  # it waits for the held row: let it go on, so that the test ends, and fail
        await holder.rollback()
        with contextlib.suppress(Exception):
            await task
        raise AssertionError("the hand-over waited for a row another transaction holds")
    return task.result()


async def test_a_hand_over_never_waits_for_a_report_being_closed(
    arrange: Arrange, clean_db: AsyncEngine, clock: FakeClock, dialect: str
) -> None:
    if dialect != "postgresql":
        pytest.skip("SQLite locks the whole database, one writer at a time: no row locks")
    mailing_id, *client_ids, lower, higher = await _arrange(arrange, clean_db, clock)

    async with (
        clean_db.connect() as holder,
        clean_db.connect() as closer,
        clean_db.connect() as worker,
    ):
        closing_pid = await _backend(closer, "enable_indexscan = off", "enable_bitmapscan = off")
        await _backend(worker, "enable_seqscan = off", "enable_bitmapscan = off")
        await holder.begin()
        await holder.execute(select(Report.id).where(Report.id == higher).with_for_update())

        async def close() -> int:
            async with closer.begin():
                return await reports_repository.close_unsent(
                    closer,
                    lifecycle.skipped(SkipReason.OPTED_OUT),
                    client_ids=client_ids,
                    now=clock.now(),
                )

        closing = asyncio.create_task(close())
        await eventually(lambda: _waits_for_a_row(clean_db, closing_pid), what="closing waits")
        # The worker takes the report nobody holds and leaves the one held, without waiting.
        marked = await _without_waiting(_hand_over(worker, [lower, higher], clock), holder)
        assert marked == [lower]
        await holder.rollback()
        # The closing goes on: it closes the one left; the other is the worker's to answer.
        assert await asyncio.wait_for(closing, 10) == 1

    assert await arrange.statuses(mailing_id) == {"sending": 1, "skipped": 1}


async def test_a_report_left_while_held_is_claimed_again_once_its_lease_runs_out(
    arrange: Arrange, clean_db: AsyncEngine, clock: FakeClock, dialect: str
) -> None:
    """Should the transaction holding it roll back, nothing is lost: only late by a lease."""
    if dialect != "postgresql":
        pytest.skip("SQLite locks the whole database, one writer at a time: no row locks")
    mailing_id, *_, lower, higher = await _arrange(arrange, clean_db, clock)
    async with clean_db.connect() as holder, clean_db.connect() as worker:
        await holder.begin()
        await holder.execute(select(Report.id).where(Report.id == lower).with_for_update())
        marked = await _without_waiting(_hand_over(worker, [lower, higher], clock), holder)
        assert marked == [higher]
        await holder.rollback()

    later = clock.now() + timedelta(minutes=2)
    async with clean_db.begin() as connection:
        claimed = await repository.claim(
            connection, owner="host-b:2:0000000b", now=later, lease_until=later, limit=10
        )
    assert [report.id for report in claimed] == [lower]
    assert await arrange.statuses(mailing_id) == {"sending": 1, "pending": 1}
