"""A dead worker's leases are taken over in seconds; a live one's never (dispatch.heartbeat)."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.dispatch.heartbeat import Heartbeat, HeartbeatTuning, new_worker_id, process_gone
from sms_sender.dispatch.models import WorkerHeartbeat
from sms_sender.reports.models import Report, ReportStatus
from tests.arrange import Arrange
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

# Judged dead at the first look that finds its count unchanged: no test waits for the clock.
AT_ONCE = HeartbeatTuning(interval=0.01, dead_after=0.0)


def _heartbeat(clean_db: AsyncEngine, clock: FakeClock, worker_id: str) -> Heartbeat:
    woken: list[bool] = []
    return Heartbeat(
        database=clean_db,
        clock=clock,
        worker_id=worker_id,
        resendable_provider=None,
        on_take_over=lambda: woken.append(True),
        tuning=AT_ONCE,
    )


async def _leased_to(arrange: Arrange, owner: str) -> int:
    """A mailing of three reports: one `sending` and one claimed by ``owner``, one free."""
    await arrange.many_clients(3)
    mailing_id = await arrange.mailing()
    sending, claimed, _ = [report.id for report in await arrange.reports(mailing_id)]
    lease_until = arrange.clock.now() + timedelta(hours=1)  # far from running out
    async with arrange.sessionmaker() as session, session.begin():
        for report_id, status in ((sending, ReportStatus.SENDING), (claimed, ReportStatus.PENDING)):
            await session.execute(
                update(Report)
                .where(Report.id == report_id)
                .values(status=status, lease_owner=owner, lease_expires_at=lease_until, attempts=1)
            )
    return mailing_id


async def _leases(arrange: Arrange, mailing_id: int) -> list[tuple[str, str | None]]:
    return [(r.status, r.lease_owner) for r in await arrange.reports(mailing_id)]


async def test_a_worker_whose_beats_stopped_loses_its_leases_at_once(
    arrange: Arrange, clean_db: AsyncEngine, clock: FakeClock
) -> None:
    dead = "another-host:4242:0badcafe"
    mailing_id = await _leased_to(arrange, dead)
    await _heartbeat(clean_db, clock, dead).tick()  # it beat once, then died
    watcher = _heartbeat(clean_db, clock, new_worker_id())

    assert await watcher.tick() == []  # first sight: its count has not had time to stand still
    assert await watcher.tick() == [dead]

    reports = await arrange.reports(mailing_id)
    assert [(r.status, r.lease_owner) for r in reports] == [
        ("unknown", None),  # it may have reached the gateway: never sent again
        ("pending", None),  # merely claimed: free for any worker now
        ("pending", None),
    ]
    assert "stopped mid-send" in (reports[0].error or "")
    async with arrange.sessionmaker() as session:
        workers = list(await session.scalars(select(WorkerHeartbeat.worker_id)))
    assert dead not in workers


async def test_a_worker_that_keeps_beating_keeps_its_leases(
    arrange: Arrange, clean_db: AsyncEngine, clock: FakeClock
) -> None:
    alive = "busy-host:77:0a11ce00"
    mailing_id = await _leased_to(arrange, alive)
    alive_beat = _heartbeat(clean_db, clock, alive)
    watcher = _heartbeat(clean_db, clock, "watcher-host:1:00000000")
    before = await _leases(arrange, mailing_id)

    for _ in range(3):
        await alive_beat.tick()
        assert await watcher.tick() == []

    assert await _leases(arrange, mailing_id) == before


async def test_a_worker_of_this_host_whose_process_is_gone_is_dead_at_first_sight(
    arrange: Arrange, clean_db: AsyncEngine, clock: FakeClock
) -> None:
    finished = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await finished.wait()  # its pid runs no more
    host = new_worker_id().rsplit(":", 2)[0]
    dead = f"{host}:{finished.pid}:deadbeef"
    assert process_gone(dead)
    mailing_id = await _leased_to(arrange, dead)
    await _heartbeat(clean_db, clock, dead).tick()  # registered, as its process had done
    watcher = Heartbeat(
        database=clean_db,
        clock=clock,
        worker_id=new_worker_id(),
        resendable_provider=None,
        on_take_over=lambda: None,
        tuning=HeartbeatTuning(dead_after=3600.0),  # its beats alone would take an hour
    )

    assert await watcher.tick() == [dead]
    assert [status for status, _ in await _leases(arrange, mailing_id)] == [
        "unknown",
        "pending",
        "pending",
    ]


def test_only_a_pid_of_this_host_that_no_longer_runs_is_gone() -> None:
    host = new_worker_id().rsplit(":", 2)[0]
    assert not process_gone(new_worker_id())  # ourselves
    assert not process_gone(f"{host}:1:00000000")  # init runs (or is not ours to signal)
    assert not process_gone("some-other-host:999999:00000000")  # another host's pid
    assert not process_gone("not a worker id")
