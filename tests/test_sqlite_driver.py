"""SQLite's statements go to aiosqlite's thread in one hop each, and behave as a DBAPI cursor's.

The behaviour is checked on both databases (PostgreSQL's driver is the reference); the number
of calls to aiosqlite's thread only where there is one.
"""

from __future__ import annotations

from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine


@pytest.fixture
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every function aiosqlite queues to a connection's thread, as it is queued."""
    calls: list[Any] = []
    queue = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return await queue(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_a_statement_is_one_call_in_the_thread(
    clean_db: AsyncEngine, dialect: str, thread_calls: list[Any]
) -> None:
    async with clean_db.connect() as connection:
        await connection.execute(text("SELECT 1"))  # connected, transaction begun
        before = len(thread_calls)
        rows = (await connection.execute(text("SELECT 1 UNION ALL SELECT 2"))).all()
        assert rows == [(1,), (2,)]
        await connection.execute(text("SELECT 1 WHERE 1 = 0"))
        if dialect == "sqlite":
            # aiosqlite through SQLAlchemy's own adapter: cursor, execute, fetch, close each.
            assert len(thread_calls) - before == 2


async def test_rows_counts_and_errors_are_those_of_the_driver(clean_db: AsyncEngine) -> None:
    async with clean_db.connect() as connection:
        await connection.execute(
            text("CREATE TEMPORARY TABLE things (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
        )
        await connection.execute(
            text("INSERT INTO things (id, name) VALUES (:id, :name)"),
            [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}],
        )
        changed = await connection.execute(
            text("UPDATE things SET name = name || '!' WHERE id > 1")
        )
        assert changed.rowcount == 2
        returned = await connection.execute(
            text("INSERT INTO things (id, name) VALUES (4, 'd') RETURNING id, name")
        )
        assert returned.all() == [(4, "d")]
        streamed = await connection.stream(text("SELECT name FROM things ORDER BY id"))
        assert [row.name async for row in streamed] == ["a", "b!", "c!", "d"]
        with pytest.raises(IntegrityError):
            await connection.execute(text("INSERT INTO things (id, name) VALUES (5, 'a')"))


async def test_a_transaction_begins_in_the_hop_of_its_first_statement(
    clean_db: AsyncEngine, dialect: str, thread_calls: list[Any]
) -> None:
    async with clean_db.connect() as connection:
        await connection.execute(text("CREATE TEMPORARY TABLE things (id INTEGER PRIMARY KEY)"))
        await connection.commit()
        before = len(thread_calls)
        await connection.execute(text("INSERT INTO things (id) VALUES (1)"))  # with its BEGIN
        assert connection.in_transaction()
        await connection.rollback()
        async with connection.begin():
            pass  # begun and committed without a statement: nothing to send
        if dialect == "sqlite":
            assert len(thread_calls) - before == 2  # the INSERT, the ROLLBACK
        # The BEGIN was sent: the ROLLBACK undid the INSERT.
        assert (await connection.execute(text("SELECT count(*) FROM things"))).scalar() == 0
