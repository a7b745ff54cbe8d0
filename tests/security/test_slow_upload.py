"""A slow CSV upload holds no database connection and blocks no other write.

Regression of issue 11: 1,200 rows, then silence, made ``POST /messages`` wait 30 s and answer
503 on SQLite (the import held the write lock while the body trickled in), and held a pooled
connection in an open transaction on PostgreSQL. The upload is now received whole first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.security.conftest import AppFactory

pytestmark = pytest.mark.usefixtures("clean_db")

IMPORT = "/api/v1/clients/import"
HEADER = "phone,operator_code,tag,timezone\n"
ROWS = 1200


async def test_a_stalled_upload_holds_no_connection_and_blocks_no_write(
    client: httpx.AsyncClient, clean_db: AsyncEngine
) -> None:
    waiting = asyncio.Event()
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield (HEADER + "".join(f"7{n:010d},,,\n" for n in range(ROWS))).encode()
        waiting.set()  # the app has taken the rows and asks for more
        await release.wait()
        yield b"79999999999,,,\n"

    upload = asyncio.create_task(
        client.post(IMPORT, content=slow_body(), headers={"Content-Type": "text/csv"})
    )
    await asyncio.wait_for(waiting.wait(), timeout=10)

    assert clean_db.pool.checkedout() == 0, "the stalled upload holds a database connection"
    async with asyncio.timeout(5):  # SQLite's busy timeout is 30 s: a held lock shows here
        created = await client.post("/api/v1/messages", json={"text": "not blocked"})
    assert created.status_code == 201

    release.set()
    response = await asyncio.wait_for(upload, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == ROWS + 1


async def test_an_upload_that_stops_sending_gets_408_and_imports_nothing(
    make_app: AppFactory, token: str
) -> None:
    never = asyncio.Event()

    async def stalled_body() -> AsyncIterator[bytes]:
        yield (HEADER + "79001234567,,,\n").encode()
        await never.wait()
        yield b""

    async with make_app(upload_read_timeout=0.2) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            response = await client.post(
                IMPORT, content=stalled_body(), headers={"Content-Type": "text/csv"}
            )
            listed = (await client.get("/api/v1/clients")).json()["items"]

    assert response.status_code == 408
    assert response.headers["content-type"] == "application/problem+json"
    assert "SMS_SENDER_UPLOAD_READ_TIMEOUT" in response.json()["detail"]
    assert listed == []
