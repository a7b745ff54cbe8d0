"""Connecting, writing and waking: how each database is opened, written and signalled."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import weakref
from collections.abc import AsyncIterator
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    event,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import Pool
from sqlalchemy.util import await_only

from sms_sender.dialects._sqlite_driver import one_hop_dbapi
from sms_sender.dialects._which import Bind, on_postgresql

# --- Connecting ----------------------------------------------------------------------------


def create_engine_for(url: URL, **kwargs: Any) -> AsyncEngine:
    """An engine for the URL; SQLite gets WAL, a busy timeout and IMMEDIATE transactions."""
    if url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        ping = "pool_pre_ping" not in kwargs
        engine = create_async_engine(url, **kwargs)
        if ping:
            _ping_at_checkout(engine)
        return engine
    # The pool's reset is done by _configure_sqlite, which skips it when nothing is open.
    kwargs.setdefault("module", one_hop_dbapi())  # a statement is one hop to aiosqlite's thread
    engine = create_async_engine(
        url, connect_args={"timeout": 30}, pool_reset_on_return=None, **kwargs
    )
    _configure_sqlite(engine)
    return engine


def _ping_at_checkout(engine: AsyncEngine) -> None:
    """Replace a pooled connection the server has dropped before a unit of work gets it.

    What ``pool_pre_ping`` does (three round trips with asyncpg: BEGIN, ";", ROLLBACK) in no
    round trip of its own: the unit of work's BEGIN, which SQLAlchemy's asyncpg adapter would
    send before the first statement, is sent at checkout and answers the same question. A
    connection in autocommit has no transaction to begin and asks with a ``SELECT 1``.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            if dbapi_connection.isolation_level == "autocommit":
                dbapi_connection.run_async(lambda driver: driver.execute("SELECT 1"))
            else:
                # The adapter's own BEGIN (with its isolation settings); its first statement
                # then finds the transaction open. Returned unused, the pool's reset ends it.
                await_only(dbapi_connection._start_transaction())
        except Exception as error:  # any failure means the connection is unusable
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(f"pooled connection is gone: {error!r}") from error


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (the driver's own handling breaks SAVEPOINT).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, reset_state: Any) -> None:
        # The pool's rollback on return, but only when a transaction is still open: after a
        # commit it would be a needless hop to aiosqlite's thread on every request.
        if not reset_state.terminate_only and dbapi_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: a read-then-write transaction can then wait
        # on busy_timeout instead of failing with SQLITE_BUSY when another writer got there first.
        # A read-only unit of work (see read_only) reads a WAL snapshot beside the writer instead.
        options = connection.get_execution_options()
        # Sent with the transaction's first statement, in the same hop (_sqlite_driver.py).
        begin = connection.connection.dbapi_connection.begin
        if options.get(_READ_ONLY_OPTION):
            begin("BEGIN")
            return
        turn: _Turn | None = options.get(_LAZY_TURN_OPTION)
        if turn is not None:
            # Events are sync, but run in SQLAlchemy's greenlet under the awaiting task: this
            # waits for the turn in the event loop, as the driver's own awaits do.
            await_only(turn.take())
            connection.connection.record_info[_LAZY_TURN_OPTION] = turn
        begin("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        # A unit of work's connection comes back after its COMMIT or ROLLBACK: its turn ends.
        turn = record.record_info.pop(_LAZY_TURN_OPTION, None)
        if turn is not None:
            turn.give_back()


_READ_ONLY_OPTION = "sms_sender_read_only"


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine for work that only reads: on SQLite it never waits for the write lock."""
    return engine.execution_options(**{_READ_ONLY_OPTION: True})


# --- Writing -------------------------------------------------------------------------------


def writes_lock_whole_database(bind: Bind) -> bool:
    """SQLite: a writing transaction holds the only write lock. PostgreSQL locks rows."""
    return not on_postgresql(bind)


class _Writers:
    """This process's writers of one SQLite database: their lock, and the lock files they share.

    The files stay open while the pool lives: a turn is then a few ``flock`` calls and no
    ``open`` (a turn is taken for every claim, hand-over and settle of the engine).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, database: str | None) -> None:
        self.loop, self.lock = loop, asyncio.Lock()
        self.files: tuple[int, int, int] | None = None  # the gate, the lock, the priority file
        self.priority_waiters = 0  # held shared on the priority file while there are any
        path = _lock_file_path(database)
        if path is not None:
            flags, mode = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
            self.files = (
                os.open(f"{path}.gate", flags, mode),
                os.open(path, flags, mode),
                os.open(f"{path}.priority", flags, mode),
            )
            weakref.finalize(self, _close_all, self.files)


def _close_all(descriptors: tuple[int, ...]) -> None:
    for descriptor in descriptors:
        os.close(descriptor)  # closing the only descriptor of a file releases its flock


# One per SQLite database this process writes to, keyed by the engine's pool (which its
# option variants such as read_only share), for the event loop its lock belongs to.
_SQLITE_WRITERS: WeakKeyDictionary[Pool, _Writers] = WeakKeyDictionary()

# How long a writer sleeps between tries of another process's lock: short at first (a writer
# in the engine holds it for a few ms), growing so a long import is not polled for nothing.
_FILE_LOCK_FIRST_WAIT = 0.0005
_FILE_LOCK_LONGEST_WAIT = 0.002


def writer_turn(
    engine: AsyncEngine, *, priority: bool = False
) -> contextlib.AbstractAsyncContextManager[Any]:
    """Hold this while writing through ``engine``: on SQLite, every process's writers queue here.

    SQLite lets one writer in at a time. A transaction that finds the lock taken sleeps in
    SQLite's busy handler, for 1, 2, 5, 10 … and then 100 ms at a time, and so starts long
    after the lock came free while a writer that never sleeps gets in again and again: in the
    engine, where a claim, a hand-over and a results write often meet, that idled every send
    slot for 10-25 ms per group; beside the engine's process, the API's writes waited up to
    400 ms. So this process's writers queue on an asyncio lock, and then take an exclusive
    ``flock`` on ``<database>-writer.lock`` (passing ``<database>-writer.lock.gate`` first, so
    they take turns) that every process writing the file takes: the next writer, wherever it
    runs, starts within a few ms of the last one's end. The CLI does not take it (it writes
    rarely; it waits in the busy handler). PostgreSQL's rows are locked one by one, so there it
    is nothing.

    A ``priority`` writer (a web request, which someone waits on) goes before the engine's: while
    it waits at the head of its process's queue it holds ``<database>-writer.lock.priority``
    shared, and an engine writer that finds it held gives way, once per turn: the API's write
    then waits for the write under way only, not also for the engine's next, and under a stream
    of requests the engine still gets every other turn.
    """
    if not writes_lock_whole_database(engine):
        return contextlib.nullcontext()
    return _Turn(engine.sync_engine.pool, engine.url.database, priority=priority)


def _writers(pool: Pool, database: str | None) -> _Writers:
    loop = asyncio.get_running_loop()
    writers = _SQLITE_WRITERS.get(pool)
    if writers is None or writers.loop is not loop:  # first use, or an engine outliving its loop
        writers = _SQLITE_WRITERS[pool] = _Writers(loop, database)
    return writers


def _lock_file_path(database: str | None) -> str | None:
    """Where the writers of this SQLite database meet; None for one that lives in memory."""
    if not database or database == ":memory:" or "mode=memory" in database:
        return None
    return f"{database.removeprefix('file:').partition('?')[0]}-writer.lock"


class _Turn:
    """This process's lock, then the lock file every process shares; given back in reverse."""

    def __init__(self, pool: Pool, database: str | None, *, priority: bool) -> None:
        self._pool, self._database, self._priority = pool, database, priority
        self._held: _Writers | None = None

    async def __aenter__(self) -> None:
        await self.take()

    async def __aexit__(self, *_exc: object) -> None:
        self.give_back()

    async def take(self) -> None:
        if self._held is not None:
            return
        writers = _writers(self._pool, self._database)
        says_it_waits = self._priority and writers.files is not None
        if says_it_waits:
            writers.priority_waiters += 1
        try:
            if says_it_waits and writers.priority_waiters == 1:
                await _take_file_lock(writers.files[2], fcntl.LOCK_SH)  # type: ignore[index]
            await self._take(writers)
        finally:
            if says_it_waits:
                writers.priority_waiters -= 1
                if not writers.priority_waiters:
                    fcntl.flock(writers.files[2], fcntl.LOCK_UN)  # type: ignore[index]
        self._held = writers

    async def _take(self, writers: _Writers) -> None:
        await writers.lock.acquire()
        try:
            if writers.files is not None:
                # flock is no queue: a writer that gives the lock back and asks again at once
                # would win it again and again over one that polls. So every writer first
                # passes a gate, and only the gate's holder polls the lock: the last writer,
                # asking again, waits at the gate until the one there has got in.
                gate, lock, priority = writers.files
                if self._priority:
                    await _take_file_lock(gate)
                    try:
                        await _take_file_lock(lock)
                    finally:
                        fcntl.flock(gate, fcntl.LOCK_UN)
                    _count_priority_turn(lock)
                else:
                    await _take_giving_way(gate, lock, priority)
        except BaseException:
            writers.lock.release()
            raise

    def give_back(self) -> None:
        writers, self._held = self._held, None
        if writers is None:
            return
        try:
            if writers.files is not None:
                fcntl.flock(writers.files[1], fcntl.LOCK_UN)
        finally:
            writers.lock.release()


async def _take_giving_way(gate: int, lock: int, priority: int) -> None:
    """The gate, then the lock; but once per turn, the gate to a priority writer if one waits.

    Once, so that the engine is not starved by a stream of requests: it lets the next priority
    writer pass the gate, then holds the gate until it has the lock, so the priority writer
    after that one waits for this write.
    """
    await _take_file_lock(gate)
    try:
        given_way = False
        wait = _FILE_LOCK_FIRST_WAIT
        while True:
            if not given_way and _is_held(priority):
                given_way = True
                fcntl.flock(gate, fcntl.LOCK_UN)
                await _let_one_by(lock, priority)
                await _take_file_lock(gate)
                continue
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                await asyncio.sleep(wait)
                wait = min(wait * 1.5, _FILE_LOCK_LONGEST_WAIT)
    finally:
        fcntl.flock(gate, fcntl.LOCK_UN)  # a no-op while given way (not held)


async def _let_one_by(lock: int, priority: int) -> None:
    """Wait until a priority writer has had the lock, or none waits any more."""
    turns = _priority_turns(lock)
    wait = _FILE_LOCK_FIRST_WAIT
    while True:
        if _priority_turns(lock) != turns or not _is_held(priority):
            return
        await asyncio.sleep(wait)
        wait = min(wait * 1.5, _FILE_LOCK_LONGEST_WAIT)


# The lock file holds the count of turns priority writers have had, for the writers that give
# way to see one pass (none stays at the gate long enough to be seen there).
_COUNT = struct.Struct("<Q")


def _priority_turns(lock: int) -> int:
    read = os.pread(lock, _COUNT.size, 0)
    return _COUNT.unpack(read)[0] if len(read) == _COUNT.size else 0


def _count_priority_turn(lock: int) -> None:
    """Count one more priority turn, in the lock file (whose lock this writer holds)."""
    os.pwrite(lock, _COUNT.pack((_priority_turns(lock) + 1) % 2**64), 0)


def _is_held(descriptor: int) -> bool:
    """Whether another open file holds a lock on this file (tried, and let go at once)."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(descriptor, fcntl.LOCK_UN)
    return False


async def _take_file_lock(descriptor: int, operation: int = fcntl.LOCK_EX) -> None:
    """A ``flock`` on the open file (exclusive unless told), waited for without blocking the loop.

    Polled with LOCK_NB and short sleeps: a blocking flock would stop the event loop, and one
    in a thread could take the lock after its waiter was cancelled, and hold it for no one.
    """
    wait = _FILE_LOCK_FIRST_WAIT
    while True:
        try:
            fcntl.flock(descriptor, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            await asyncio.sleep(wait)
            wait = min(wait * 1.5, _FILE_LOCK_LONGEST_WAIT)


_LAZY_TURN_OPTION = "sms_sender_lazy_writer_turn"


@contextlib.asynccontextmanager
async def writer_turn_at_begin(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The engine for a unit of work that takes :func:`writer_turn` (with priority) if it writes.

    A request's session may only read, or read its body first (a form, an upload): on SQLite
    its transaction takes the turn at its BEGIN, from before its first statement, and gives it
    back when the transaction's connection returns to the pool after COMMIT or ROLLBACK (so a
    unit of work that commits batch by batch waits its turn for each batch). On PostgreSQL it
    is the engine itself.
    """
    if not writes_lock_whole_database(engine):
        yield engine
        return
    turn = _Turn(engine.sync_engine.pool, engine.url.database, priority=True)
    try:
        yield engine.execution_options(**{_LAZY_TURN_OPTION: turn})
    finally:
        turn.give_back()  # a connection that never came back (a cancelled request) holds none


@contextlib.asynccontextmanager
async def begin_write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()`` in this process's turn to write (see :func:`writer_turn`)."""
    async with writer_turn(engine), engine.begin() as connection:
        yield connection


async def advisory_lock(
    bind: AsyncConnection | AsyncSession, key: int, *, shared: bool = False
) -> None:
    """Take the lock named ``key`` until this transaction ends (``shared``: beside other sharers).

    PostgreSQL: ``pg_advisory_xact_lock`` (or its ``_shared`` form). SQLite: nothing to do, the
    writing transaction already holds the whole database (transactions begin IMMEDIATE).
    """
    if not on_postgresql(bind):
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await bind.execute(text(f"SELECT {function}(:key)"), {"key": key})


# --- Wake-ups ------------------------------------------------------------------------------


def listens_across_processes(bind: Bind) -> bool:
    """Whether other processes can be woken through the database (PostgreSQL's LISTEN/NOTIFY)."""
    return on_postgresql(bind)


async def notify_other_processes(session: AsyncSession, channel: str) -> None:
    """Wake the database's listeners on ``channel`` once this transaction commits.

    PostgreSQL: ``NOTIFY`` is transactional, listeners hear it only after COMMIT. SQLite has no
    such signal: other processes find the change when they next poll.
    """
    if listens_across_processes(session):
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})
