"""Several engines send mailings while the API races them: opt-outs, client deletes, pauses,
resumes, end_at edits and a cancel. Whatever the interleaving, nothing collides and nothing is
broken.

A deadlock between the API and the engine (two transactions that lock the same reports in
different orders) is what this hunts: PostgreSQL cancels one of them, and the victim shows up
as a 503 (the API) or a "database unavailable" retry (the engine). Neither may happen. And the
delivery rules hold: every report ends final, no (mailing, client) is sent twice, a report the
API closed (skipped, cancelled) was never sent, and no send starts after an opt-out commits.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import structlog

from sms_sender.clock import SystemClock
from sms_sender.config import LogFormat
from sms_sender.db import Notifier, create_engine, create_sessionmaker
from sms_sender.logging import configure_logging
from sms_sender.providers.fake import FakeProvider, accept
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, phones
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")

CLIENTS = 300
MAILINGS = 3
ENGINES = int(os.environ.get("STRESS_ENGINES", "3"))
RACE_SECONDS = 2.5
NEVER_SENT = {ReportStatus.SKIPPED, ReportStatus.CANCELLED, ReportStatus.EXPIRED}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line as JSON, in a buffer (the service's own logging set-up)."""
    structlog.reset_defaults()
    buffer = io.StringIO()
    configure_logging(LogFormat.JSON, "INFO", stream=buffer)
    yield buffer
    configure_logging()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


class Race:
    """The API side: random changes through the API, each noted once it answered."""

    def __init__(self, client: httpx.AsyncClient, clock: FakeClock, seed: int) -> None:
        self.client, self.clock = client, clock
        self.random = random.Random(seed)
        self.answers: Counter[int] = Counter()
        self.failures: list[str] = []
        self.opted_out_at: dict[int, datetime] = {}  # client id -> wall clock after the commit

    async def call(self, method: str, path: str, **kwargs: Any) -> int:
        response = await self.client.request(method, path, **kwargs)
        self.answers[response.status_code] += 1
        if response.status_code >= 500:
            self.failures.append(f"{method} {path}: {response.status_code} {response.text}")
        return response.status_code

    async def opt_outs(self, client_ids: list[int], until: float) -> None:
        while time.monotonic() < until:
            client_id = self.random.choice(client_ids)
            if await self.call("POST", f"/api/v1/clients/{client_id}/opt-out") == 200:
                self.opted_out_at.setdefault(client_id, datetime.now(UTC))
            await asyncio.sleep(self.random.uniform(0, 0.02))

    async def stop_lists(self, client_ids: list[int], until: float) -> None:
        """Stop lists of many phones at once: one transaction skips many clients' reports."""
        while time.monotonic() < until:
            chosen = self.random.sample(range(len(client_ids)), 40)
            body = "phone\n" + "".join(f"{phones(1, start=index)[0]}\n" for index in chosen)
            status = await self.call(
                "POST",
                "/api/v1/clients/opt-out/import",
                content=body.encode(),
                headers={"Content-Type": "text/csv"},
            )
            if status == 200:
                for index in chosen:
                    self.opted_out_at.setdefault(client_ids[index], datetime.now(UTC))
            await asyncio.sleep(self.random.uniform(0.05, 0.2))

    async def deletes(self, client_ids: list[int], until: float) -> None:
        while time.monotonic() < until:
            await self.call("DELETE", f"/api/v1/clients/{self.random.choice(client_ids)}")
            await asyncio.sleep(self.random.uniform(0, 0.05))

    async def controls(self, mailing_ids: list[int], until: float) -> None:
        """Pause and resume, move end_at, and cancel the last mailing halfway."""
        cancel_at = time.monotonic() + RACE_SECONDS / 2
        while time.monotonic() < until:
            mailing_id = self.random.choice(mailing_ids[:-1])
            end_at = self.clock.now() + timedelta(minutes=self.random.randint(30, 300))
            await self.call(
                "PATCH", f"/api/v1/mailings/{mailing_id}", json={"end_at": end_at.isoformat()}
            )
            await self.call("POST", f"/api/v1/mailings/{mailing_id}/pause")
            await asyncio.sleep(self.random.uniform(0, 0.05))
            await self.call("POST", f"/api/v1/mailings/{mailing_id}/resume")
            if cancel_at and time.monotonic() >= cancel_at:
                await self.call("POST", f"/api/v1/mailings/{mailing_ids[-1]}/cancel")
                cancel_at = 0.0
            await asyncio.sleep(self.random.uniform(0, 0.03))


async def test_engines_and_api_racing_never_deadlock_or_break_a_rule(
    arrange: Arrange,
    make_engine: EngineFactory,
    client: httpx.AsyncClient,
    clock: FakeClock,
    notifier: Notifier,
    database_url: str,
    log_lines: io.StringIO,
) -> None:
    client_ids = await arrange.many_clients(CLIENTS)
    # Calls are timed by the wall clock, like the opt-outs; the schedule keeps the test's clock.
    provider = FakeProvider(clock=SystemClock(), default=accept(delay=0.002))
    seed = random.randrange(1 << 32)
    race = Race(client, clock, seed)

    async with AsyncExitStack() as engines:
        for _ in range(ENGINES):  # each with a pool of its own, as in a process of its own
            database = create_engine(database_url)
            engines.push_async_callback(database.dispose)
            engine = make_engine(
                provider,
                sessionmaker_=create_sessionmaker(database, notifier),
                rate_limit=400.0,
                concurrency=10,
                batch_size=40,
            )
            await engines.enter_async_context(engine.running())
        mailing_ids = [await arrange.mailing() for _ in range(MAILINGS)]
        await provider.wait_for_calls(20)
        until = time.monotonic() + RACE_SECONDS
        await asyncio.gather(
            race.opt_outs(client_ids, until),
            race.stop_lists(client_ids, until),
            race.deletes(client_ids, until),
            race.controls(mailing_ids, until),
        )
        for mailing_id in mailing_ids:  # a pause of the race may be the last word
            await race.call("POST", f"/api/v1/mailings/{mailing_id}/resume")

        async def all_final() -> bool:
            for mailing_id in mailing_ids:
                statuses = await arrange.statuses(mailing_id)
                if statuses["pending"] + statuses["sending"]:
                    return False
            return True

        await eventually(all_final, within=60, what=f"every report final (seed {seed})")

    problems = [
        line
        for line in map(json.loads, log_lines.getvalue().splitlines())
        if line["level"] in ("error", "critical") or "unavailable" in line["event"]
    ]
    assert problems == [], f"seed {seed}"
    assert race.failures == [], f"seed {seed}"
    assert race.opted_out_at, "the race opted nobody out"

    final = {
        report.id: report.status
        for mailing_id in mailing_ids
        for report in await arrange.reports(mailing_id)
    }
    calls = provider.calls
    assert provider.duplicates() == []
    per_client = Counter((call.message.mailing_id, call.message.client_id) for call in calls)
    assert [key for key, count in per_client.items() if count > 1] == []
    assert [c.report_id for c in calls if final[c.report_id] in NEVER_SENT] == [], f"seed {seed}"
    late = [
        call.report_id
        for call in calls
        if call.message.client_id in race.opted_out_at
        and call.started_at > race.opted_out_at[call.message.client_id]
    ]
    assert late == [], f"sends started after their client's opt-out committed (seed {seed})"
    assert await arrange.mailing_status(mailing_ids[-1]) == "cancelled"
