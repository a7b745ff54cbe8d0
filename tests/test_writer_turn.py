"""The writer turn every process writing one SQLite file shares (issue 17).

Two engines on separate pools to one database stand for two processes: their lock files are
separate open file descriptions, so their flocks conflict as another process's would.
On PostgreSQL the turn is nothing: writers lock rows, not the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.db import create_engine
from sms_sender.dialects import begin_write, writer_turn

# SQLite's busy handler looks again after 1, 2, 5, 10 … then 100 ms: a turn handed over within
# this is one no sleeping writer could have had.
PROMPT = 0.04


@pytest.fixture
async def other_process(clean_db: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A second engine on its own pool: what another process writing the database has."""
    engine = create_engine(clean_db.url.render_as_string(hide_password=False))
    yield engine
    await engine.dispose()


async def test_a_writer_in_another_process_waits_and_then_gets_in_at_once(
    clean_db: AsyncEngine, other_process: AsyncEngine, dialect: str
) -> None:
    released_at = 0.0
    entered_at: list[float] = []
    holding = asyncio.Event()

    async def hold() -> None:
        nonlocal released_at
        async with writer_turn(clean_db):
            holding.set()
            await asyncio.sleep(0.2)
            released_at = time.monotonic()

    async def wait_then_write() -> None:
        await holding.wait()
        async with begin_write(other_process) as connection:
            entered_at.append(time.monotonic())
            await connection.execute(text("SELECT 1"))

    started = time.monotonic()
    await asyncio.gather(hold(), wait_then_write())
    if dialect == "postgresql":
        assert entered_at[0] - started < 0.15  # did not wait for the holder
        return
    assert entered_at[0] >= released_at
    assert entered_at[0] - released_at < PROMPT


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
    # Both processes can take it again at once: nothing holds the process lock or the file.
    for engine in (other_process, clean_db):
        async with asyncio.timeout(PROMPT), writer_turn(engine):
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
        for number in range(10):
            started = time.monotonic()
            response = await client.post("/api/v1/clients", json={"phone": f"7916123450{number}"})
            slowest = max(slowest, time.monotonic() - started)
            assert response.status_code == 201, response.text
    finally:
        stop.set()
        await writer
    assert slowest < 0.25


async def test_a_priority_writer_goes_before_a_waiting_engine_writer(
    clean_db: AsyncEngine, other_process: AsyncEngine, dialect: str
) -> None:
    """The API's next write does not wait behind the engine's write that asked first."""
    api_holding = asyncio.Event()
    released_at = 0.0
    entered_at: dict[str, float] = {}

    async def first_request() -> None:
        nonlocal released_at
        async with writer_turn(clean_db, priority=True):
            api_holding.set()
            await asyncio.sleep(0.2)
            released_at = time.monotonic()

    async def engine_write() -> None:
        await api_holding.wait()
        async with writer_turn(other_process):
            entered_at["engine"] = time.monotonic()
            await asyncio.sleep(0.2)

    async def next_request() -> None:
        await api_holding.wait()
        await asyncio.sleep(0.05)  # the engine's writer is at the gate by now (SQLite)
        async with writer_turn(clean_db, priority=True):  # queued behind the first request
            entered_at["api"] = time.monotonic()

    started = time.monotonic()
    await asyncio.gather(first_request(), engine_write(), next_request())
    if dialect == "postgresql":  # nobody waited for anybody
        assert max(entered_at.values()) - started < 0.15
        return
    assert entered_at["api"] - released_at < PROMPT
    assert entered_at["engine"] > entered_at["api"]


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
        asked_at = time.monotonic()
        async with writer_turn(other_process):
            waited = time.monotonic() - asked_at
            turns_in_between = api_turns - turns_before
    finally:
        stop.set()
        await asyncio.gather(*streams)
    if dialect == "postgresql":
        assert waited < 0.04
        return
    # The write under way, then at most the one it gave way to (each 50 ms).
    assert turns_in_between <= 2
    assert waited < 0.1 + PROMPT
