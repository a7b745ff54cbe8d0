"""SQLite through aiosqlite's thread in one hop per statement.

aiosqlite runs each sqlite3 call in the connection's own thread, and every call is a hop: queued
to that thread, which wakes, runs it and wakes the event loop with the result. SQLAlchemy's
adapter makes three or four of them per statement (open a cursor, execute, fetch the rows, close
the cursor), so a request of four statements and a COMMIT waited for about fifteen wake-ups of
two threads; on a busy machine each one can cost a scheduling slice. Here a statement is one
call in that thread: the cursor is opened, executed, read out and closed there, and what
SQLAlchemy asks of a cursor afterwards (its description, rows, rowcount, lastrowid) is kept.
A transaction's BEGIN travels with its first statement (:meth:`OneHopConnection.begin`).

Only the plain cursor changes; server-side cursors (``stream``), COMMIT, ROLLBACK and connecting
stay SQLAlchemy's and aiosqlite's own. It leans on aiosqlite's ``Connection._execute`` (how
aiosqlite itself queues a call to its thread) and on the adapter classes of SQLAlchemy's
``aiosqlite`` dialect; both versions are pinned by the lock files.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import await_only

# What one statement leaves behind: description, rows, rowcount, lastrowid.
_Outcome = tuple[Any, list[Any], int, int | None]


def _run_statement(
    connection: sqlite3.Connection,
    begin: str | None,
    operation: str,
    parameters: Any,
    many: bool,
) -> _Outcome:
    """In aiosqlite's thread: the transaction's BEGIN if it is still to be sent, then the whole
    life of a cursor, from opening to closing."""
    if begin is not None:
        connection.execute(begin)
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor:
    """A DBAPI cursor whose every statement is one call in aiosqlite's thread."""

    server_side = False
    arraysize = 1

    def __init__(self, adapt_connection: OneHopConnection) -> None:
        self._adapt_connection = adapt_connection
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    def execute(self, operation: str, parameters: Any = None) -> None:
        self._run(operation, parameters, many=False)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        self._run(operation, seq_of_parameters, many=True)

    def _run(self, operation: str, parameters: Any, *, many: bool) -> None:
        adapt_connection = self._adapt_connection
        driver: aiosqlite.Connection = adapt_connection.driver_connection
        begin, adapt_connection.pending_begin = adapt_connection.pending_begin, None
        try:
            call = driver._execute(  # type: ignore[no-untyped-call]
                _run_statement, driver._conn, begin, operation, parameters, many
            )
            outcome: _Outcome = await_only(call)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self.description, rows, self.rowcount, self.lastrowid = outcome
        self._rows = deque(rows)

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        """What SQLAlchemy's async results call to close the driver's cursor: already closed."""

    def setinputsizes(self, *_sizes: Any) -> None:
        pass

    def __enter__(self) -> OneHopCursor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """aiosqlite's connection as SQLAlchemy sees it, whose BEGIN waits for the first statement.

    A transaction's BEGIN goes to aiosqlite's thread in the hop of its first statement, not a
    hop of its own; one that ends before running any statement never reaches SQLite, and its
    COMMIT or ROLLBACK is no hop either (nothing was begun there).
    """

    __slots__ = ("pending_begin",)
    _cursor_cls = OneHopCursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.pending_begin: str | None = None

    def begin(self, statement: str) -> None:
        """Begin a transaction with ``statement`` (``BEGIN``, ``BEGIN IMMEDIATE``), sent with
        the next statement."""
        self.pending_begin = statement

    @property
    def in_transaction(self) -> bool:
        return self.pending_begin is not None or bool(self.driver_connection.in_transaction)

    def commit(self) -> None:
        if self.pending_begin is not None:
            self.pending_begin = None
            return
        super().commit()

    def rollback(self) -> None:
        if self.pending_begin is not None:
            self.pending_begin = None
            return
        super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy's dialect sees it, handing out one-hop connections."""

    def connect(self, *args: Any, **kwargs: Any) -> OneHopConnection:
        adapted = super().connect(*args, **kwargs)
        return OneHopConnection(self, adapted.driver_connection)


def one_hop_dbapi() -> OneHopDBAPI:
    """The DBAPI module to give ``create_async_engine(module=…)`` for a SQLite URL."""
    return OneHopDBAPI(aiosqlite, sqlite3)
