"""sms-sender's own processes (``api``, ``serve``, ``worker``) started for a figure, by pid.

Each runs the installed ``sms-sender`` command with settings in its environment, logs to a file
in the figure's scratch folder, and is stopped with SIGTERM (then SIGKILL) by its pid.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

from benchmarks.network import LOOPBACK, free_port, wait_until_answering

SMS_SENDER = str(Path(sys.executable).with_name("sms-sender"))
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class ServiceProcess:
    """``with ServiceProcess(["worker"], settings, log) as worker: worker.pid``."""

    def __init__(self, arguments: list[str], settings: dict[str, str], log: Path) -> None:
        self.arguments = arguments
        self._environment = {
            **os.environ,
            **{f"SMS_SENDER_{name.upper()}": value for name, value in settings.items()},
        }
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [SMS_SENDER, *self.arguments],
                env=self._environment,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
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
            raise RuntimeError(f"sms-sender {' '.join(self.arguments)} is not running")
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

    def peak_rss_bytes(self) -> int:
        """The process's high-water mark of resident memory (VmHWM), read from /proc."""
        return _proc_status_kib(self.pid, "VmHWM") * 1024

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise LookupError(f"/proc/{pid}/status has no {field}")


class HttpService(ServiceProcess):
    """``sms-sender api`` or ``serve`` on 127.0.0.1 and a free port; entered once it is ready."""

    def __init__(self, command: str, settings: dict[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__([command, "--host", LOOPBACK, "--port", str(self.port)], settings, log)
        self.base_url = f"http://{LOOPBACK}:{self.port}"

    async def ready(self) -> Self:
        try:
            await wait_until_answering(f"{self.base_url}/readyz", self.process)
        except (TimeoutError, RuntimeError) as error:
            raise RuntimeError(f"{error}; its log ends with:\n{self.log_tail()}") from error
        return self
