"""The writer turn every process writing one SQLite file shares (issue 17).

Two engines on separate pools to one database stand for two processes: their lock files are
separate open file descriptions, so their flocks conflict as another process's would.
On PostgreSQL the turn is nothing: writers lock rows, not the database.

Who gets the turn first is asserted from the order of events, never from wall-clock bounds a
busy machine overruns: a hand-over is "prompt" within PROMPT beyond what the event loop itself
was late (:class:`LoopLateness`), and a wait that should end is bounded by GIVE_UP only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import TracebackType

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.db import create_engine
from sms_sender.dialects import begin_write, writer_turn

# SQLite's busy handler looks again after 1, 2, 5, 10 … then 100 ms: a turn handed over within
# this (beyond the loop's own lateness) is one no sleeping writer could have had. A handed-over
# turn takes 1-3 ms here; polls 100 ms apart (a lock file polled too lazily) miss it mostly.
PROMPT = 0.02
# A wait that never ends is a failure, not a hung test; on a slow machine any wait that should
# end ends well within this.
GIVE_UP = 10.0


class LoopLateness:
    """How late this event loop woke its 1 ms sleeps while the block ran.

    On a busy machine the process waits for a core; every timer due meanwhile, a poll of the
    lock file as much as these, is late by that much. A hand-over measured on the wall clock
    is fair only beside the loop's lateness over the same moments (:meth:`within`).
    """

    def __init__(self) -> None:
        self._ticks: list[tuple[float, float]] = []  # (asked, woke) of each 1 ms sleep
        self._ticking: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLateness:
        self._ticking = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None:
        assert self._ticking is not None
        self._ticking.cancel()

    def within(self, start: float, end: float) -> float:
        """The most a sleep was late that was under way between ``start`` and ``end``."""
        return max(
            (woke - asked - 0.001 for asked, woke in self._ticks if woke >= start and asked <= end),
            default=0.0,
        )

    async def _tick(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(0.001)
            self._ticks.append((asked, time.monotonic()))


@pytest.fixture
async def other_process(clean_db: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A second engine on its own pool: what another process writing the database has."""
    engine = create_engine(clean_db.url.render_as_string(hide_password=False))
    yield engine
    await engine.dispose()


async def test_a_writer_in_another_process_waits_and_then_gets_in_at_once(
    clean_db: AsyncEngine, other_process: AsyncEngine, dialect: str
) -> None:
    holding, release = asyncio.Event(), asyncio.Event()
    released_at = 0.0
    entered_at: list[float] = []
    async with other_process.connect():
        pass  # its pool has a connection: getting in is the turn, not opening the file

    async def hold() -> None:
        nonlocal released_at
        async with writer_turn(clean_db):
            holding.set()
            await release.wait()
            released_at = time.monotonic()

    async def wait_then_write() -> None:
        await holding.wait()
        async with begin_write(other_process) as connection:
            entered_at.append(time.monotonic())
            await connection.execute(text("SELECT 1"))

    holder = asyncio.create_task(hold())
    try:
        async with asyncio.timeout(GIVE_UP), LoopLateness() as lateness:
            writer = asyncio.create_task(wait_then_write())
            await asyncio.sleep(0.1)  # the writer has asked (it polls the lock file on SQLite)
            if dialect == "postgresql":
                await writer  # while the holder still holds: it did not wait for it
                assert not released_at
                return
            assert not entered_at  # it waits
            release.set()
            await asyncio.gather(holder, writer)
    finally:
        release.set()
        await holder
    assert entered_at[0] >= released_at
    late = lateness.within(released_at, entered_at[0])
    assert entered_at[0] - released_at < PROMPT + late, late


async def test_a_cancelled_waiter_leaves_the_turn_free(
    clean_db: AsyncEngine, other_process: AsyncEngine, dialect: str
) -> None:
    holding, release = asyncio.Event(), asyncio.Event()
    waiter_got_in = asyncio.Event()

    async def hold() -> None:
        async with writer_turn(clean_db):
            holding.set()
            await release.wait()

    async def wait_for_turn() -> None:
        async with writer_turn(other_process):
            waiter_got_in.set()
            await asyncio.sleep(1)

    holder = asyncio.create_task(hold())
    await holding.wait()
    waiter = asyncio.create_task(wait_for_turn())
    await asyncio.sleep(0.05)  # now polling the lock file (SQLite)
    assert waiter_got_in.is_set() == (dialect == "postgresql")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    # Both processes can take it again: nothing holds the process lock or the file (a free
    # turn is taken without a wait; a held one is polled until GIVE_UP).
    for engine in (other_process, clean_db):
        async with asyncio.timeout(GIVE_UP), writer_turn(engine):
            pass


async def test_an_api_write_gets_in_while_another_process_writes_continuously(
    client: httpx.AsyncClient, other_process: AsyncEngine
) -> None:
    """The engine beside the API writes back to back: a POST waits about one write, not 400 ms."""
    stop = asyncio.Event()

    async def write_continuously() -> None:
        while not stop.is_set():
            async with begin_write(other_process) as connection:
                await connection.execute(text("SELECT 1 FROM clients LIMIT 1"))
                await asyncio.sleep(0.01)

    writer = asyncio.create_task(write_continuously())
    try:
        await asyncio.sleep(0.05)
        slowest = 0.0
        async with asyncio.timeout(GIVE_UP):
            for number in range(10):
                started = time.monotonic()
                phone = f"7916123450{number}"
                response = await client.post("/api/v1/clients", json={"phone": phone})
                slowest = max(slowest, time.monotonic() - started)
                assert response.status_code == 201, response.text
    finally:
        stop.set()
        await writer
    # Waiting in SQLite's busy handler instead, behind writes back to back, took 0.7-4 s.
    assert slowest < 0.5


async def test_a_priority_writer_goes_before_a_waiting_engine_writer(
    clean_db: AsyncEngine, other_process: AsyncEngine, dialect: str
) -> None:
    """The API's next write does not wait behind the engine's write that asked first."""
    api_holding, release = asyncio.Event(), asyncio.Event()
    released_at = 0.0
    entered_at: dict[str, float] = {}

    async def first_request() -> None:
        nonlocal released_at
        async with writer_turn(clean_db, priority=True):
            api_holding.set()
            await release.wait()
            released_at = time.monotonic()

    async def engine_write() -> None:
        async with writer_turn(other_process):
            entered_at["engine"] = time.monotonic()
            await asyncio.sleep(0.2)

    async def next_request() -> None:
        async with writer_turn(clean_db, priority=True):  # queued behind the first request
            entered_at["api"] = time.monotonic()

    holder = asyncio.create_task(first_request())
    try:
        async with asyncio.timeout(GIVE_UP), LoopLateness() as lateness:
            await api_holding.wait()
            writers = [asyncio.create_task(engine_write())]
            await asyncio.sleep(0.05)  # the engine's writer is at the gate by now (SQLite)
            writers.append(asyncio.create_task(next_request()))
            await asyncio.sleep(0.05)  # and the next request waits behind the first
            if dialect == "postgresql":  # nobody waited for anybody
                await asyncio.gather(*writers)
                assert not released_at
                return
            assert not entered_at
            release.set()
            await asyncio.gather(holder, *writers)
    finally:
        release.set()
        await holder
    assert entered_at["engine"] > entered_at["api"] >= released_at
    late = lateness.within(released_at, entered_at["api"])
    assert entered_at["api"] - released_at < PROMPT + late, late


async def test_the_engine_gets_a_turn_in_a_stream_of_priority_writes(
    clean_db: AsyncEngine, other_process: AsyncEngine, dialect: str
) -> None:
    """Requests writing back to back, several queued at once, let the engine in between."""
    stop = asyncio.Event()
    api_turns = 0

    async def requests() -> None:
        nonlocal api_turns
        while not stop.is_set():
            async with writer_turn(clean_db, priority=True):
                api_turns += 1
                await asyncio.sleep(0.05)

    streams = [asyncio.create_task(requests()) for _ in range(3)]
    try:
        await asyncio.sleep(0.12)
        turns_before = api_turns
        async with asyncio.timeout(GIVE_UP), writer_turn(other_process):
            turns_in_between = api_turns - turns_before
    finally:
        stop.set()
        await asyncio.gather(*streams)
    if dialect == "postgresql":
        assert turns_in_between == 0  # it did not wait
        return
    # The write under way, then at most the one it gave way to.
    assert turns_in_between <= 2
