"""Database errors in the engine: it tries again as soon as its tuning says, and a transaction
cancelled under it (a deadlock's victim) loses and repeats nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from sms_sender.dispatch import repository
from sms_sender.providers.fake import FakeProvider, accept
from tests.arrange import Arrange
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_the_worker_tries_again_after_the_engines_retry_after_error(
    arrange: Arrange, make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = repository.claim
    claims_at: list[float] = []

    async def unavailable_once(*args: Any, **kwargs: Any) -> Any:
        claims_at.append(time.monotonic())
        if len(claims_at) == 1:
            raise OperationalError("claim", {}, ConnectionError("the database went away"))
        return await claim(*args, **kwargs)

    monkeypatch.setattr(repository, "claim", unavailable_once)
    await arrange.many_clients(3)
    async with make_engine(FakeProvider()).running():
        mailing_id = await arrange.mailing()

        async def finished() -> bool:
            return await arrange.mailing_status(mailing_id) == "finished"

        await eventually(finished, what="the mailing sent after one failed claim")
    # The tests' engine waits 0.1 s after a database error; the worker's own default is 2 s.
    assert claims_at[1] - claims_at[0] < 1.5
    assert await arrange.statuses(mailing_id) == {"sent": 3}


class _Deadlock(Exception):
    """What asyncpg raises in the transaction PostgreSQL cancels to break a deadlock."""

    sqlstate = "40P01"


async def test_a_hand_over_cancelled_by_a_deadlock_loses_and_repeats_nothing(
    arrange: Arrange, make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's transaction as a deadlock's victim: its marks and the earlier answers
    written with them are rolled back; the group is handed over again and the answers written
    later, so every report is sent once and recorded ``sent``."""
    settle, hand_over = repository.settle, repository.hand_over
    settled_by: list[object] = []
    answers_rolled_back = 0
    calls = 0

    async def settle_noting(connection: Any, *args: Any, **kwargs: Any) -> Any:
        settled_by.append(connection)
        return await settle(connection, *args, **kwargs)

    async def victim_thrice(connection: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls, answers_rolled_back
        calls += 1
        marked = await hand_over(connection, *args, **kwargs)
        if calls in (2, 3, 4):  # the marks (and answers) are in; the transaction is cancelled
            answers_rolled_back += bool(settled_by) and settled_by[-1] is connection
            raise DBAPIError("UPDATE reports …", {}, _Deadlock("deadlock detected"))
        return marked

    monkeypatch.setattr(repository, "settle", settle_noting)
    monkeypatch.setattr(repository, "hand_over", victim_thrice)
    await arrange.many_clients(30)
    provider = FakeProvider(default=accept(delay=0.005))
    async with make_engine(provider, concurrency=5).running():
        mailing_id = await arrange.mailing()

        async def finished() -> bool:
            return await arrange.mailing_status(mailing_id) == "finished"

        await eventually(finished, what="the mailing sent despite three cancelled hand-overs")
    assert calls > 4
    assert answers_rolled_back > 0  # a cancelled transaction did carry answers
    assert provider.duplicates() == []
    assert len(provider.calls) == 30
    assert await arrange.statuses(mailing_id) == {"sent": 30}
