"""The engine's write transactions per message: each is a turn the API's writes wait behind on
SQLite (``dialects.writer_turn``), so a turn added back makes these fail."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.db import Notifier, create_engine, create_sessionmaker
from sms_sender.dispatch import ratelimit
from sms_sender.providers.fake import FakeProvider, accept
from tests.arrange import Arrange
from tests.dispatch.conftest import EngineFactory

pytestmark = pytest.mark.usefixtures("clean_db")

RATE = 100.0  # messages per second: a reservation covers 10 of them (GROUP_SECONDS)
REPORTS = 25


@dataclass
class Transaction:
    statements: list[str] = field(default_factory=list)
    committed: bool = False
    ended_at: float = 0.0  # time.monotonic()

    def writes(self) -> list[str]:
        return [s for s in self.statements if _writes(s)]

    def touches(self, table: str) -> bool:
        return any(_updates(s, table) for s in self.writes())

    def settles(self) -> bool:
        """The settle's UPDATE: each report's outcome from a batch of rows (a JSON document
        on SQLite, arrays on PostgreSQL)."""
        return any(_updates(s, "reports") and "provider_message_id" in s for s in self.writes())

    def marks_sending(self) -> bool:
        """The hand-over's UPDATE: it returns each report's mailing terms."""
        return any(_updates(s, "reports") and "send_window_start" in s for s in self.writes())


def _updates(statement: str, table: str) -> bool:
    """An UPDATE of the table, alone or after a WITH (PostgreSQL locks the rows in a CTE first)."""
    return statement.startswith(f"UPDATE {table} ") or (
        statement.startswith("WITH ") and f") UPDATE {table} " in statement
    )


def _writes(statement: str) -> bool:
    first = statement.split(None, 1)[0]
    return first in {"UPDATE", "INSERT", "DELETE"} or (
        first == "WITH" and any(f" {verb} " in statement for verb in ("UPDATE", "INSERT"))
    )


class Transactions:
    """Every transaction run through an engine, with its statements and how it ended."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.ended: list[Transaction] = []
        self._open: dict[int, Transaction] = {}
        sync = engine.sync_engine
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "before_cursor_execute", self._execute)
        event.listen(sync, "commit", lambda connection: self._end(connection, committed=True))
        event.listen(sync, "rollback", lambda connection: self._end(connection, committed=False))

    def writing(self) -> list[Transaction]:
        return [transaction for transaction in self.ended if transaction.writes()]

    def _begin(self, connection: Connection) -> None:
        self._open[id(connection)] = Transaction()

    def _execute(self, connection: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if id(connection) in self._open:
            self._open[id(connection)].statements.append(" ".join(statement.split()))

    def _end(self, connection: Connection, *, committed: bool) -> None:
        transaction = self._open.pop(id(connection), None)
        if transaction is not None:
            transaction.committed = committed
            transaction.ended_at = time.monotonic()
            self.ended.append(transaction)


async def test_a_rate_limited_group_is_one_write_transaction_and_sends_only_its_budget(
    arrange: Arrange, make_engine: EngineFactory, database_url: str
) -> None:
    await arrange.many_clients(REPORTS)
    mailing_id = await arrange.mailing()
    provider = FakeProvider()  # records real time
    database = create_engine(database_url)
    transactions = Transactions(database)
    try:
        # Slots for every held report at once: each group meets the rate's budget, not the
        # concurrency, and the next group asks while the last one's slots still run.
        worker = make_engine(
            provider,
            rate_limit=RATE,
            concurrency=50,
            sessionmaker_=create_sessionmaker(database, Notifier()),
        ).worker
        started = datetime.now(UTC)
        await worker.drain()
    finally:
        await database.dispose()

    assert len(provider.calls) == REPORTS
    assert await arrange.statuses(mailing_id) == {"sent": REPORTS}
    # Each group: its reservation and its marks in one committed transaction; none rolled back.
    budget = int(RATE * ratelimit.GROUP_SECONDS)
    hand_overs = [t for t in transactions.writing() if t.touches("rate_limits")]
    assert len(hand_overs) == -(-REPORTS // budget)  # 10, 10, 5
    assert all(t.committed and t.marks_sending() for t in hand_overs)
    assert [t.statements for t in transactions.writing() if not t.committed] == []
    # The answers of a group ride along with the next group's hand-over, while there is one.
    assert any(t.settles() for t in hand_overs)
    # "Is the mailing finished?" is read after each settle; only the last one writes.
    finishing = [t for t in transactions.writing() if t.touches("mailings")]
    assert len(finishing) == 1
    # The budget exactly: the first window sends 10 and the 11th waits for the next one.
    since_start = sorted((call.started_at - started).total_seconds() for call in provider.calls)
    assert since_start[budget] >= budget / RATE - 0.005
    early = [(k, at) for k, at in enumerate(since_start) if at < k / RATE - 0.005]
    assert early == []


async def test_a_group_behind_another_workers_reservation_is_marked_when_its_slots_come(
    arrange: Arrange, make_engine: EngineFactory, database_url: str
) -> None:
    await arrange.many_clients(5)
    mailing_id = await arrange.mailing()
    provider = FakeProvider()  # records real time
    database = create_engine(database_url)
    try:
        worker = make_engine(
            provider, rate_limit=RATE, sessionmaker_=create_sessionmaker(database, Notifier())
        ).worker
        await worker.prepare()
        # Another worker (a limiter of its own) holds the rate for the next 1.5 s: long enough
        # that this worker's first hand-over comes while it runs, even on a loaded machine
        # (0.3 s ran out first at load 12, and the group went in one turn).
        async with database.begin() as connection:
            held = await ratelimit.RateLimiter(RATE).reserve(connection, int(RATE * 1.5))
        held_until = datetime.now(UTC) + timedelta(seconds=held.ends_at - time.monotonic())
        transactions = Transactions(database)
        await worker.drain()
    finally:
        await database.dispose()

    assert await arrange.statuses(mailing_id) == {"sent": 5}
    # No send before the other worker's slots are over: the rate is shared.
    assert min(call.started_at for call in provider.calls) >= held_until - timedelta(seconds=0.005)
    # Not left ``sending`` while the other worker's slots ran: the marks were rolled back,
    # the slots reserved alone, and the group marked when they came.
    hand_overs = [t for t in transactions.writing() if t.touches("rate_limits")]
    assert [(t.committed, t.marks_sending()) for t in hand_overs] == [
        (False, True),
        (True, False),
    ]
    [marking] = [t for t in transactions.writing() if t.committed and t.marks_sending()]
    assert marking.ended_at >= held.ends_at - ratelimit.PROMPT


async def test_a_wake_up_while_the_rate_runs_does_not_spin_the_loop(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    """Woken while its own slots still run, the worker waited for nothing and turned again at
    once: with a claim in flight no turn yielded, so the loop spun until the slots came."""
    await arrange.many_clients(REPORTS)
    mailing_id = await arrange.mailing()
    worker = make_engine(FakeProvider(), rate_limit=RATE, concurrency=50).worker
    turns = 0
    turn = worker.turn

    async def counted(stop: asyncio.Event) -> bool:
        nonlocal turns
        turns += 1
        return await turn(stop)

    async def wake_often() -> None:
        while True:
            worker.wake()  # as notifications of resumed or resent mailings would
            await asyncio.sleep(0.001)

    worker.turn = counted  # type: ignore[method-assign]
    waking = asyncio.create_task(wake_often())
    try:
        await worker.drain()
    finally:
        waking.cancel()

    assert await arrange.statuses(mailing_id) == {"sent": REPORTS}
    # Three groups over a quarter of a second: a handful of turns each, not thousands.
    assert turns < 200


async def test_a_wake_up_while_every_slot_is_busy_does_not_spin_the_loop(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    """Woken with every slot busy, reports held and a claim in flight, the worker's short wait
    for answers returned at once and no turn yielded: the calls that would free a slot never
    ran again, and the loop spun for good (found by tests/dispatch/test_concurrency_stress.py,
    three engines in one process: the others' transactions stayed open for minutes)."""
    await arrange.many_clients(40)
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=accept(delay=0.02))
    worker = make_engine(provider, concurrency=4, batch_size=8).worker
    turns = 0
    turn = worker.turn

    async def counted(stop: asyncio.Event) -> bool:
        nonlocal turns
        turns += 1
        if turns > 20_000:
            raise AssertionError("the worker's loop spins without yielding")
        return await turn(stop)

    async def wake_often() -> None:
        while True:
            worker.wake()
            await asyncio.sleep(0.001)

    worker.turn = counted  # type: ignore[method-assign]
    waking = asyncio.create_task(wake_often())
    try:
        await worker.drain()
    finally:
        waking.cancel()

    assert await arrange.statuses(mailing_id) == {"sent": 40}
    # Ten groups of four calls of 20 ms: a few turns per group, not thousands.
    assert turns < 500, turns
