"""A request whose transaction collides with another one: a 503 that says nothing was changed.

PostgreSQL cancels one of two transactions that wait on each other's row locks (a deadlock,
SQLSTATE 40P01) or that cannot both be serialized (40001). The request's unit of work is then
rolled back whole, so "try again" is the honest answer, never a 500. SQLite lets one
transaction write at a time: the same two changes queue and both go through.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.clients import service as clients_service
from sms_sender.consent import service as consent_service
from sms_sender.consent.rules import PhoneHasher
from sms_sender.dialects import begin_write
from sms_sender.messages import service as messages_service
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")


class _Collided(Exception):
    """What asyncpg raises for a collision: an error carrying its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"collision {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_a_collision_is_503_with_retry_after(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, sqlstate: str
) -> None:
    async def collides(*_args: object, **_kwargs: object) -> None:
        raise DBAPIError("INSERT …", {}, _Collided(sqlstate))

    monkeypatch.setattr(messages_service, "create", collides)
    response = await client.post("/api/v1/messages", json={"text": "hi"})
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["type"] == "/problems/write-collision"
    assert "nothing was changed" in problem["detail"]


async def test_another_database_error_is_still_a_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fails(*_args: object, **_kwargs: object) -> None:
        raise DBAPIError("INSERT …", {}, _Collided("XX000"))  # internal_error: a bug

    monkeypatch.setattr(messages_service, "create", fails)
    response = await client.post("/api/v1/messages", json={"text": "hi"})
    assert response.status_code == 500


async def _waits_for_a_lock(connection: AsyncConnection) -> bool:
    # pg_locks, not pg_stat_activity: that one is read once per transaction.
    waiting = await connection.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
    return bool(waiting)


async def test_an_opt_out_that_deadlocks_is_503_and_changes_nothing(
    client: httpx.AsyncClient, clean_db: AsyncEngine, arrange: Arrange, dialect: str
) -> None:
    """A real deadlock: the opt-out holds its client and waits for a report another holds."""
    [client_id] = await arrange.clients([ClientSpec("79001234567")])
    mailing_id = await arrange.mailing()
    [report] = await arrange.reports(mailing_id)

    async with begin_write(clean_db) as other:
        if dialect == "postgresql":
            # This side never gives up first, so the request is the one cancelled.
            await other.execute(text("SET LOCAL deadlock_timeout = '30s'"))
        await other.execute(
            text("UPDATE reports SET updated_at = updated_at WHERE id = :id"), {"id": report.id}
        )
        opt_out = asyncio.create_task(client.post(f"/api/v1/clients/{client_id}/opt-out"))
        if dialect == "postgresql":
            deadline = time.monotonic() + 10
            while not await _waits_for_a_lock(other):  # the opt-out holds the client by now
                assert time.monotonic() < deadline, "the opt-out never waited for the report"
                await asyncio.sleep(0.02)
            await other.execute(
                text("UPDATE clients SET tag = 'held' WHERE id = :id"), {"id": client_id}
            )
        else:
            await asyncio.sleep(0.2)  # it waits for the writer turn this transaction holds
            await other.execute(
                text("UPDATE clients SET tag = 'held' WHERE id = :id"), {"id": client_id}
            )
            assert not opt_out.done()
    response = await opt_out

    statuses = await arrange.statuses(mailing_id)
    if dialect == "postgresql":
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert statuses == {"pending": 1}  # nothing of the opt-out was kept
        again = await client.post(f"/api/v1/clients/{client_id}/opt-out")
        assert again.status_code == 200, again.text
    else:
        assert response.status_code == 200, response.text
    assert await arrange.statuses(mailing_id) == {"skipped": 1}


async def test_an_opt_out_of_a_client_deleted_meanwhile_is_404(
    client: httpx.AsyncClient,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    dialect: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The delete commits between the opt-out's read of the client and its change: 404."""
    if dialect == "sqlite":
        pytest.skip("one writer at a time: no delete commits inside the opt-out's transaction")
    [client_id] = await arrange.clients([ClientSpec("79001234567")])
    opt_out = consent_service.opt_out_clients

    async def deleted_first(*args: Any, **kwargs: Any) -> Any:
        async with sessionmaker() as other, other.begin():
            await clients_service.delete(
                other, client_id, hasher=PhoneHasher(b"test key"), now=clock.now()
            )
        return await opt_out(*args, **kwargs)

    monkeypatch.setattr(consent_service, "opt_out_clients", deleted_first)
    response = await client.post(f"/api/v1/clients/{client_id}/opt-out")
    assert response.status_code == 404, response.text
