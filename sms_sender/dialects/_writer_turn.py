"""SQLite's writer turn: every process's writers of one database file wait in one line.

SQLite lets one writer into the whole file at a time; a transaction that finds the lock taken
sleeps in the busy handler and misses free moments, while the writer beside it gets in again.
So each process's writers take an asyncio lock, then an exclusive ``flock`` on a lock file beside
the database, after a gate that makes the file lock a queue; a web request goes before the
engine (:func:`writer_turn`). PostgreSQL locks rows: there the turn is nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import weakref
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool

from sms_sender.dialects._which import Bind, on_postgresql


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


# An engine with this option takes the turn of the unit of work under way (below) at BEGIN.
_LAZY_TURN_OPTION = "sms_sender_lazy_writer_turn"
_turn_at_begin: ContextVar[_Turn | None] = ContextVar("sms_sender_turn_at_begin", default=None)


def turn_taken_at_begin(engine: AsyncEngine) -> AsyncEngine:
    """The engine for units of work run inside :func:`writer_turn_at_begin`: made once, at start.

    Its transactions take that unit of work's turn at their BEGIN. Outside such a block they
    take none, as the plain engine's do. On PostgreSQL it is the engine itself.
    """
    if not writes_lock_whole_database(engine):
        return engine
    return engine.execution_options(**{_LAZY_TURN_OPTION: True})


def turn_to_take_at_begin(options: Mapping[str, Any]) -> _Turn | None:
    """The turn a transaction with these execution options takes at its BEGIN, if any."""
    return _turn_at_begin.get() if options.get(_LAZY_TURN_OPTION) else None


@contextlib.asynccontextmanager
async def writer_turn_at_begin(engine: AsyncEngine) -> AsyncIterator[None]:
    """A unit of work through :func:`turn_taken_at_begin`'s engine takes :func:`writer_turn`
    (with priority) if it writes.

    A request's session may only read, or read its body first (a form, an upload): on SQLite
    its transaction takes the turn at its BEGIN, from before its first statement, and gives it
    back when the transaction's connection returns to the pool after COMMIT or ROLLBACK (so a
    unit of work that commits batch by batch waits its turn for each batch). On PostgreSQL it
    is nothing. The turn is found through this task's context, not an engine made per unit of
    work: building that engine was a twentieth of a small request's CPU.
    """
    if not writes_lock_whole_database(engine):
        yield
        return
    turn = _Turn(engine.sync_engine.pool, engine.url.database, priority=True)
    outer = _turn_at_begin.set(turn)
    try:
        yield
    finally:
        turn.give_back()  # a connection that never came back (a cancelled request) holds none
        _turn_at_begin.reset(outer)


@contextlib.asynccontextmanager
async def begin_write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()`` in this process's turn to write (see :func:`writer_turn`)."""
    async with writer_turn(engine), engine.begin() as connection:
        yield connection
