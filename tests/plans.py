"""Query plans of the statements a piece of code runs, for tests that hold a plan in place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

Statement = tuple[str, Any]


@contextmanager
def _recorded(engine: AsyncEngine) -> Iterator[list[Statement]]:
    seen: list[Statement] = []

    def record(*args: Any) -> None:
        seen.append((args[2], args[3]))  # the statement and its parameters, as the driver gets them

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def the_select(
    engine: AsyncEngine, run: Callable[[], Awaitable[object]], *, reading: str = ""
) -> Statement:
    """The one SELECT that ``run`` sends to the database (BEGIN and the like left out).

    ``reading``: the one whose text has this (``FROM reports``), when ``run`` sends others.
    """
    with _recorded(engine) as seen:
        await run()
    [select] = [
        (sql, values)
        for sql, values in seen
        if sql.lstrip().startswith("SELECT") and reading in sql
    ]
    return select


async def sqlite_plan(engine: AsyncEngine, statement: Statement) -> str:
    """SQLite's EXPLAIN QUERY PLAN of the statement, one step a line."""
    sql, parameters = statement
    async with engine.connect() as connection:
        rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
        return "\n".join(str(row[-1]) for row in rows)
