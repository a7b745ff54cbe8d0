"""A provider that hangs holds no lock and no connection the API needs (``sms-sender serve``)."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from sms_sender.providers.fake import FakeProvider, hang
from tests.arrange import Arrange
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")

# Seconds. A request blocked behind a hanging send would wait until the send is released
# (never, here) or SQLite's 30 s busy timeout; 2 s leaves room for a loaded CI machine
# (a WAL checkpoint on a long-lived test database once took 1 s).
FAST_ENOUGH = 2.0


async def test_the_api_answers_promptly_while_every_send_hangs(
    client: httpx.AsyncClient,
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
) -> None:
    await arrange.many_clients(20)
    provider = FakeProvider(default=hang())
    async with make_engine(provider, concurrency=5).running():
        message = await client.post("/api/v1/messages", json={"text": "Hi"})
        created = await client.post(
            "/api/v1/mailings",
            json={
                "start_at": clock.now().isoformat(),
                "end_at": (clock.now() + timedelta(hours=1)).isoformat(),
                "message_id": message.json()["id"],
                "filter": {},
            },
        )
        assert created.status_code == 201, created.text
        mailing_id = created.json()["id"]
        await provider.wait_for_calls(5)  # every concurrency slot is stuck in a send

        requests = [
            client.get(f"/api/v1/mailings/{mailing_id}/stats"),
            client.get("/api/v1/reports", params={"mailing_id": mailing_id, "status": "sending"}),
            client.post("/api/v1/clients", json={"phone": "79990000001"}),  # a write
            client.post(f"/api/v1/mailings/{mailing_id}/pause"),
        ]
        for request in requests:
            started = time.perf_counter()
            response = await request
            elapsed = time.perf_counter() - started
            assert response.status_code < 300, response.text
            assert elapsed < FAST_ENOUGH, f"{response.request.url} took {elapsed:.2f}s"

        stats = (await client.get(f"/api/v1/mailings/{mailing_id}/stats")).json()
        assert stats["by_status"]["sending"] == 5
        provider.release()

        async def settled() -> bool:
            return (await arrange.statuses(mailing_id))["sent"] == 5

        await eventually(settled, what="the released sends recorded")
    assert await arrange.statuses(mailing_id) == {"sent": 5, "pending": 15}
