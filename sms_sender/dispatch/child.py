"""``sms-sender serve``: the API in one process, its delivery engine in a child process.

Two processes use two cores and share no event loop, so the engine's sends, claims and
SQLite statements no longer stall the API's requests (issue 17; docs/benchmarks.md, soak).
They live and stop together:

* the API starts the engine (``python -m sms_sender worker --beside-api``) in its lifespan
  and stops it with SIGTERM at shutdown, waiting for its graceful stop (sends in flight are
  recorded, claims released);
* should the engine exit on its own (a bug, kill -9, the OOM killer), the API is told
  (:meth:`EngineProcess.exited`): /readyz fails and ``serve`` stops and exits non-zero;
* should the API die, the engine reads end-of-file on its stdin and stops gracefully;
* the engine keeps its metrics in files of a folder the API adds to its /metrics.

The same pipe carries wake-ups: each channel the API's notifier fires after a commit (a
mailing created, resumed, cancelled) is written as one line, and the engine fires it on its
own notifier, so a new mailing starts at once on SQLite too, which has no LISTEN/NOTIFY (on
PostgreSQL the engine hears the NOTIFY as well; a second wake costs one look). The engine runs
in a session of its own, so a Ctrl-C at the terminal reaches only the API, which then stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import structlog

from sms_sender.db import CHANNEL_MAILINGS, CHANNEL_REPORTS, Notifier

CHANNELS = (CHANNEL_MAILINGS, CHANNEL_REPORTS)

_log = structlog.get_logger(__name__)


class EngineProcess:
    """The API's side: start the engine, forward wake-ups, learn of its exit, stop it.

    ``serve`` starts it before it imports the web application, so that the two processes
    import at once (a restart then waits for the slower of the two, not for one after the
    other) and forwards wake-ups once the application's notifier exists.
    """

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        # Where the engine keeps its metrics for the API's /metrics (sms_sender.metrics).
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="sms-sender-engine-metrics."))
        self._process: asyncio.subprocess.Process | None = None
        self._forwarders: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "sms_sender", "worker"),
            *("--beside-api", "--worker-id", self.worker_id),
            stdin=asyncio.subprocess.PIPE,
            start_new_session=True,
            env=os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir)},
        )
        _log.info("delivery engine process started", pid=self._process.pid)

    def forward_wake_ups(self, notifier: Notifier) -> None:
        """Write each channel ``notifier`` fires to the engine, from now until :meth:`stop`."""
        self._forwarders = [
            asyncio.create_task(self._forward(notifier, channel), name=f"wake-engine-{channel}")
            for channel in CHANNELS
        ]

    @property
    def pid(self) -> int:
        return self._running().pid

    async def exited(self) -> int:
        """Wait until the engine process exits; its exit code (negative: the signal)."""
        return await self._running().wait()

    async def stop(self) -> int:
        """SIGTERM the engine and wait for its graceful stop; its exit code."""
        process = self._running()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        code = await process.wait()
        for forwarder in self._forwarders:
            forwarder.cancel()
        await asyncio.gather(*self._forwarders, return_exceptions=True)
        if process.stdin is not None:
            process.stdin.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return code

    async def _forward(self, notifier: Notifier, channel: str) -> None:
        """Write ``channel`` to the engine each time it fires here (wakes coalesce meanwhile)."""
        process = self._running()
        if process.stdin is None:
            raise RuntimeError("the engine process was started without a pipe")
        wake = notifier.subscribe(channel)
        try:
            while True:
                await wake.wait()
                wake.clear()
                process.stdin.write(f"{channel}\n".encode())
                await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return  # the engine is gone: exited() says so
        finally:
            notifier.unsubscribe(channel, wake)

    def _running(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError("the engine process has not been started")
        return self._process


async def follow_api(notifier: Notifier, stop: asyncio.Event) -> None:
    """The engine's side: fire each channel read on stdin; at end-of-file, set ``stop``."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        channel = line.decode(errors="replace").strip()
        if channel in CHANNELS:
            notifier.fire(channel)
    if not stop.is_set():
        _log.warning("the API process of serve is gone; stopping the delivery engine")
        stop.set()
