"""The service's processes a figure starts (``sms-sender api``, ``serve``, a worker), by pid.

Each gets its settings in its environment, logs to a file in the figure's scratch folder, and is
stopped with SIGTERM (then SIGKILL) by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from benchmarks.network import LOOPBACK, free_port, wait_until_answering
from benchmarks.proc import child_pids, cpu_seconds, peak_rss_bytes, rss_bytes

SMS_SENDER = str(Path(sys.executable).with_name("sms-sender"))
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Set by ``python -m benchmarks run --profile DIR``: every process is sampled by py-spy.
PROFILE_DIR_ENV = "SMS_SENDER_BENCH_PROFILE_DIR"
# What a deployment sets (deploy/k8s/settings.env); the console format is for a person at a
# terminal. A figure's own settings may override it.
PRODUCTION_LOGGING = {"log_format": "json"}


class ServiceProcess:
    """``with ServiceProcess([SMS_SENDER, "worker"], settings, log) as worker: worker.pid``."""

    def __init__(self, command: list[str], settings: dict[str, str], log: Path) -> None:
        self.command = command
        self._environment = {
            **os.environ,
            **{
                f"SMS_SENDER_{name.upper()}": value
                for name, value in {**PRODUCTION_LOGGING, **settings}.items()
            },
        }
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._profiler: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                self.command,
                env=self._environment,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._profiler = _start_profiler(self._process.pid, self.log.stem)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{' '.join(self.command)} is not running")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        if self._profiler is not None:
            self._profiler.wait(timeout=60)  # it writes its samples once the target is gone
            self._profiler = None

    def peak_rss_bytes(self) -> int:
        """The process's high-water mark of resident memory (VmHWM), read from /proc."""
        return peak_rss_bytes(self.pid)

    def rss_bytes(self) -> int:
        """The process's resident memory now (VmRSS), read from /proc."""
        return rss_bytes(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def children(self) -> list[int]:
        """Pids of the processes it started (``serve``: its delivery engine)."""
        return child_pids(self.pid)

    def kill_9(self) -> None:
        """SIGKILL it and its children at once, as a power cut or the OOM killer would."""
        for pid in [*self.children(), self.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise with the end of its log if the process has exited."""
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{' '.join(self.command)} exited with {self.process.returncode}; "
                f"its log ends with:\n{self.log_tail()}"
            )


def worker_process(settings: dict[str, str], log: Path, *, instant: bool) -> ServiceProcess:
    """``sms-sender worker``, or with ``instant`` the same engine with an instant provider."""
    # No /metrics listener: its fixed default port would keep a second worker from starting.
    command = (
        [sys.executable, "-m", "benchmarks.worker"]
        if instant
        else [SMS_SENDER, "worker", "--metrics-port", "0"]
    )
    return ServiceProcess(command, settings, log)


def _start_profiler(pid: int, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` into DIR/NAME-PID.txt (collapsed stacks) when profiling is on."""
    directory = os.environ.get(PROFILE_DIR_ENV)
    if not directory:
        return None
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy on PATH (pip install py-spy, outside the lock)")
    output = Path(directory) / f"{name}-{pid}.txt"
    return subprocess.Popen(
        [
            *(py_spy, "record", "--nonblocking", "--subprocesses"),
            *("--pid", str(pid), "--format", "raw", "--rate", "200", "--output", str(output)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class HttpService(ServiceProcess):
    """``sms-sender api`` or ``serve`` on 127.0.0.1 and a free port; entered once it is ready."""

    def __init__(self, command: str, settings: dict[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__(
            [SMS_SENDER, command, "--host", LOOPBACK, "--port", str(self.port)], settings, log
        )
        self.base_url = f"http://{LOOPBACK}:{self.port}"

    async def ready(self) -> Self:
        try:
            await wait_until_answering(f"{self.base_url}/readyz", self.process)
        except (TimeoutError, RuntimeError) as error:
            raise RuntimeError(f"{error}; its log ends with:\n{self.log_tail()}") from error
        return self

    def client(self, token: str, timeout: float = 60) -> httpx.AsyncClient:
        """An HTTP client for its API (``/api/v1``), signed in with the bearer ``token``."""
        return httpx.AsyncClient(
            base_url=f"{self.base_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
