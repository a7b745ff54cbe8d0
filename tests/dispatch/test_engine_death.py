"""``sms-sender serve``: the API, and the delivery engine in a child process; they stop together.

If the engine dies, nobody is told "ready" and ``serve`` exits non-zero: an API that answers
while nothing is sent would hide the failure from whoever watches it. If the API dies, the
engine stops. A mailing created through the API wakes the engine in the other process at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from benchmarks.proc import child_pids
from sms_sender.dialects import begin_write
from sms_sender.dispatch import repository
from sms_sender.mailings.models import Mailing
from tests.dispatch.conftest import eventually

pytestmark = pytest.mark.usefixtures("clean_db")

SMS_SENDER = Path(sys.executable).with_name("sms-sender")
READY_WITHIN = 60.0  # seconds: two Python processes start, on a loaded CI machine too


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    @property
    def engine_pid(self) -> int:
        children = child_pids(self.process.pid)
        assert len(children) == 1, children
        return children[0]

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def serving(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """``sms-sender serve`` on a free loopback port, once /readyz says ready; SIGTERM at the end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    environment = os.environ | {
        "SMS_SENDER_DATABASE_URL": database_url,
        "SMS_SENDER_PROVIDER": "console",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(SMS_SENDER), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_ready(served)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _wait_until_ready(served: Served) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        assert served.process.poll() is None, served.output()
        try:
            if httpx.get(f"{served.base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve not ready within {READY_WITHIN:g}s:\n{served.output()}")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (dead, not yet reaped by its parent) still answers signal 0.
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"


def test_serve_runs_its_engine_in_a_child_process_and_is_ready_once_it_beats(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path) as served:
        engine = Path(f"/proc/{served.engine_pid}/cmdline").read_bytes().split(b"\0")
        assert b"--beside-api" in engine
        assert httpx.get(f"{served.base_url}/readyz").json() == {"status": "ready"}
    assert served.process.returncode in (0, -signal.SIGTERM), served.output()


def test_serve_starts_its_engine_before_it_imports_the_application(
    database_url: str, tmp_path: Path
) -> None:
    """Both processes import at once: a restart after a crash waits for one, not both in turn."""
    with serving(database_url, tmp_path) as served:
        output = served.output()
    engine_started = output.index("delivery engine process started")
    assert engine_started < output.index("Started server process"), output


def test_serve_exits_non_zero_when_its_engine_is_killed(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path) as served:
        os.kill(served.engine_pid, signal.SIGKILL)
        code = served.process.wait(timeout=30)
    assert code == 1, served.output()
    assert "the delivery engine process exited" in served.output()


def test_the_engine_stops_when_serve_is_killed(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path) as served:
        engine_pid = served.engine_pid
        os.kill(served.process.pid, signal.SIGKILL)
        served.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while not _gone(engine_pid):
            assert time.monotonic() < deadline, f"the engine outlived serve:\n{served.output()}"
            time.sleep(0.05)
    assert "the API process of serve is gone; stopping the delivery engine" in served.output()


async def test_mailings_created_through_the_api_start_on_time(
    database_url: str, tmp_path: Path, token: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # The engine's own look at the schedule comes every 5 s: three mailings created 2.5 s apart,
    # each due 0.5 s after its creation, can all start within 1.5 s of start_at only if the
    # API's wake-up reaches the engine in the other process (on SQLite, through the pipe).
    started_late = {}
    with serving(database_url, tmp_path) as served:
        async with httpx.AsyncClient(
            base_url=f"{served.base_url}/api/v1", headers={"Authorization": f"Bearer {token}"}
        ) as api:
            message = await api.post("/messages", json={"text": "Doors open at nine"})
            for _ in range(3):
                start_at = datetime.now(UTC) + timedelta(seconds=0.5)
                created = await api.post(
                    "/mailings",
                    json={
                        "start_at": start_at.isoformat(),
                        "end_at": (start_at + timedelta(hours=1)).isoformat(),
                        "message_id": message.json()["id"],
                        "filter": {},
                    },
                )
                assert created.status_code == 201, created.text
                mailing_id = created.json()["id"]

                async def started(mailing_id: int = mailing_id) -> bool:
                    return await _started_at(sessionmaker, mailing_id) is not None

                await eventually(started, within=10, what="the start")
                started_at = await _started_at(sessionmaker, mailing_id)
                assert started_at is not None
                started_late[mailing_id] = (started_at - start_at).total_seconds()
                await asyncio.sleep(2.5 - (datetime.now(UTC) - start_at).total_seconds())
    assert all(late < 1.5 for late in started_late.values()), (started_late, served.output())


async def test_serves_metrics_count_what_its_engine_sent(
    database_url: str, tmp_path: Path, token: str
) -> None:
    sent = 'sms_sender_messages_total{provider="console",status="sent"} 2.0'
    with serving(database_url, tmp_path) as served:
        async with httpx.AsyncClient(
            base_url=f"{served.base_url}/api/v1", headers={"Authorization": f"Bearer {token}"}
        ) as api:
            for phone in ("79001112233", "79001112234"):
                assert (await api.post("/clients", json={"phone": phone})).status_code == 201
            message = await api.post("/messages", json={"text": "Doors open at nine"})
            now = datetime.now(UTC)
            created = await api.post(
                "/mailings",
                json={
                    "start_at": now.isoformat(),
                    "end_at": (now + timedelta(hours=1)).isoformat(),
                    "message_id": message.json()["id"],
                    "filter": {},
                },
            )
            assert created.status_code == 201, created.text

            async def counted() -> bool:
                return sent in (await api.get(f"{served.base_url}/metrics")).text

            await eventually(counted, within=30, what="the engine's sends in serve's /metrics")
            exposed = (await api.get(f"{served.base_url}/metrics")).text
    # The API's own metrics are there too, and each family once.
    assert (
        'sms_sender_http_requests_total{method="POST",route="/mailings",status="201"} 1.0'
        in exposed
    )
    assert exposed.count("# TYPE sms_sender_messages_total counter") == 1


async def _started_at(
    sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int
) -> datetime | None:
    async with sessionmaker() as session:
        return await session.scalar(select(Mailing.started_at).where(Mailing.id == mailing_id))


async def test_readyz_fails_while_the_engine_beside_the_api_does_not_beat(
    app: FastAPI, anon_client: httpx.AsyncClient, clean_db: AsyncEngine
) -> None:
    app.state.engine_worker_id = "host:1:engine"
    answer = await anon_client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the delivery engine has not started yet"

    now = app.state.clock.now()
    async with begin_write(clean_db) as connection:
        await repository.beat(connection, "host:1:engine", now=now - timedelta(seconds=30))
    answer = await anon_client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the delivery engine has not beaten for 30 s"

    async with begin_write(clean_db) as connection:
        await repository.beat(connection, "host:1:engine", now=now)
    assert (await anon_client.get("/readyz")).status_code == 200
