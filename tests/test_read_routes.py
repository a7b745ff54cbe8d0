"""Routes that only read never wait for the database's write lock.

On SQLite one writer holds the lock at a time (the delivery engine claims, hands over and
settles many times a second): a read route that began its transaction with BEGIN IMMEDIATE
queued behind every one of them, and its p99 under a running mailing was a second and more
(docs/benchmarks.md, soak). They read a WAL snapshot beside the writer instead.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

# Every table a read route reads: on PostgreSQL, EXCLUSIVE blocks every writer, not a SELECT.
_LOCKED = "clients, messages, mailings, reports, mailing_report_counts, client_facet_counts"


async def test_read_routes_answer_while_a_writer_holds_the_lock(
    client: httpx.AsyncClient, clean_db: AsyncEngine, clock: FakeClock
) -> None:
    created = await client.post("/api/v1/clients", json={"phone": "79001234567", "tag": "vip"})
    client_id = created.json()["id"]
    message = await client.post("/api/v1/messages", json={"text": "Doors open at nine"})
    mailing = await client.post(
        "/api/v1/mailings",
        json={
            "start_at": clock.now().isoformat(),
            "end_at": (clock.now() + timedelta(hours=1)).isoformat(),
            "message_id": message.json()["id"],
            "filter": {},
        },
    )
    mailing_id = mailing.json()["id"]
    reads = [
        ("GET", "/api/v1/clients"),
        ("GET", f"/api/v1/clients/{client_id}"),
        ("GET", f"/api/v1/clients/{client_id}/consent-history"),
        ("GET", "/api/v1/tags"),
        ("GET", "/api/v1/messages"),
        ("GET", f"/api/v1/messages/{message.json()['id']}"),
        ("GET", "/api/v1/mailings"),
        ("GET", f"/api/v1/mailings/{mailing_id}"),
        ("GET", f"/api/v1/mailings/{mailing_id}/stats"),
        ("GET", "/api/v1/stats"),
        ("GET", "/api/v1/reports"),
        ("POST", "/api/v1/mailings/preview"),
    ]

    async with clean_db.begin() as writer:  # BEGIN IMMEDIATE on SQLite: the write lock
        if writer.dialect.name == "postgresql":
            await writer.execute(text(f"LOCK TABLE {_LOCKED} IN EXCLUSIVE MODE"))
        await writer.execute(text("UPDATE clients SET tag = tag WHERE id = :id"), {"id": client_id})
        for method, path in reads:
            body = {"filter": {}} if method == "POST" else None
            async with asyncio.timeout(5):  # the busy timeout is 30 s
                answer = await client.request(method, path, json=body)
            assert answer.status_code == 200, (path, answer.text)
