"""If the delivery engine beside the API dies, nobody is told "ready" and ``serve`` exits.

An API that answers while nothing is sent would hide the failure from whoever watches it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.app import create_app
from sms_sender.config import Settings
from sms_sender.dispatch.scheduler import Scheduler
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")


async def _broken_tick(self: Scheduler) -> None:
    raise RuntimeError("a bug in the scheduler")


async def test_readyz_fails_once_the_engine_beside_the_api_died(
    settings: Settings, clock: FakeClock, clean_db: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    application = create_app(settings, clock=clock, db_engine=clean_db, with_delivery=True)
    transport = httpx.ASGITransport(app=application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        assert (await client.get("/readyz")).status_code == 200
        monkeypatch.setattr(Scheduler, "tick", _broken_tick)
        stopped: asyncio.Event = application.state.delivery_stopped
        async with asyncio.timeout(10):
            while not stopped.is_set():
                clock.advance(seconds=10)  # the scheduler wakes for its next look, and crashes
                await asyncio.sleep(0.01)
        answer = await client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the delivery engine stopped: nothing is being sent"


def test_serve_exits_non_zero_when_its_engine_dies(tmp_path: Path) -> None:
    # The scheduler is broken in the child before ``serve`` starts: its first tick raises.
    program = "\n".join(
        [
            "from sms_sender.dispatch.scheduler import Scheduler",
            "async def broken(self): raise RuntimeError('a bug in the scheduler')",
            "Scheduler.tick = broken",
            "from sms_sender.cli import app",
            "app(['serve', '--host', '127.0.0.1', '--port', '0'])",
        ]
    )
    environment = os.environ | {
        "SMS_SENDER_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "SMS_SENDER_PROVIDER": "console",
    }
    finished = subprocess.run(
        [sys.executable, "-c", program],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 1, output
    assert "the delivery engine stopped" in output
