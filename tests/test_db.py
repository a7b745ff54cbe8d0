import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.db import create_engine
from sms_sender.dialects import begin_write
from tests.dispatch.conftest import eventually


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        pid: int = await connection.scalar(text("SELECT pg_backend_pid()"))
    return pid


async def test_a_pooled_connection_the_server_dropped_is_replaced_before_use(
    clean_db: AsyncEngine, dialect: str
) -> None:
    """The API's engine pings at checkout: a dropped connection never fails a request."""
    if dialect != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    engine = create_engine(clean_db.url.render_as_string(hide_password=False), pool_size=1)
    try:
        dropped = await _backend_pid(engine)  # now idle in the pool
        async with clean_db.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})

            async def gone() -> bool:
                query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
                count = await admin.scalar(query, {"pid": dropped})
                # pg_stat_activity is read once per transaction: look again in a new one.
                await admin.rollback()
                return count == 0

            await eventually(gone, what="the backend exited")
        assert await _backend_pid(engine) != dropped
    finally:
        await engine.dispose()


async def test_the_check_at_checkout_is_the_transaction_s_own_begin(
    clean_db: AsyncEngine, dialect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: no SELECT 1 beside the BEGIN, a round trip fewer per unit of work."""
    if dialect != "postgresql":
        pytest.skip("SQLite has no server to ask")
    sent: list[str] = []
    execute = asyncpg.Connection.execute

    async def recorded(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query.split()[0].rstrip(";"))
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", recorded)
    engine = create_engine(clean_db.url.render_as_string(hide_password=False), pool_size=1)
    try:
        await _backend_pid(engine)  # connected; back in the pool
        sent.clear()
        async with engine.begin() as connection:
            assert await connection.scalar(text("SELECT 2")) == 2
        async with engine.connect():
            pass  # checked out, unused: the pool's reset ends the transaction
        assert sent == ["BEGIN", "COMMIT", "BEGIN", "ROLLBACK"]
    finally:
        await engine.dispose()


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(
    clean_db: AsyncEngine, dialect: str
) -> None:
    """SQLite's pool skips the rollback on return only when no transaction is open."""
    if dialect != "sqlite":
        pytest.skip("the skipped rollback is SQLite's")
    engine = create_engine(clean_db.url.render_as_string(hide_password=False))
    try:
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            await driver.execute("BEGIN IMMEDIATE")  # behind SQLAlchemy's back
            assert driver.in_transaction
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert not driver.in_transaction
    finally:
        await engine.dispose()


async def test_writers_of_one_process_take_turns_on_sqlite_only(
    clean_db: AsyncEngine, dialect: str
) -> None:
    """On SQLite a writer waits for its turn in this process, never in SQLite's busy handler.

    The busy handler is switched off here, so a writer that met the lock taken would fail with
    "database is locked" at once instead of sleeping. On PostgreSQL writers do not queue.
    """
    engine = create_engine(clean_db.url.render_as_string(hide_password=False))

    @event.listens_for(engine.sync_engine, "connect")
    def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        if dialect == "sqlite":
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.close()

    inside: list[int] = []
    most_inside_at_once = 0

    async def write(number: int) -> None:
        nonlocal most_inside_at_once
        async with begin_write(engine) as connection:
            inside.append(number)
            most_inside_at_once = max(most_inside_at_once, len(inside))
            await connection.execute(text("SELECT 1"))
            await asyncio.sleep(0.05)  # hold the write lock while the others arrive
            inside.remove(number)

    try:
        await asyncio.gather(*(write(number) for number in range(3)))
    finally:
        await engine.dispose()
    assert most_inside_at_once == (1 if dialect == "sqlite" else 3)
