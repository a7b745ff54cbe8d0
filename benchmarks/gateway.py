"""The fake probe gateway (tests/fakes/gateway.py) in its own process, with timed records.

``python -m benchmarks.gateway --latency-ms 50 --record calls.txt`` serves the same gateway as
``python -m tests.fakes.gateway`` but records ``<unix time> <message id>`` for every accepted
call, stamped when the gateway has read the call (before any latency), and writes the record
when it stops: the cut-off figure counts the calls that arrived at or after a mailing's end_at,
and every figure checks for ids accepted twice. :class:`Gateway` starts it on a free port,
stops it, and reads the record back (``calls()`` once it has stopped).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self, cast

from benchmarks.proc import cpu_seconds
from sms_sender.cli import run_event_loop
from tests.fakes.gateway import ProbeGateway
from tests.fakes.http_server import serve_until_signalled, start_listening_process

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"


class _TimedRecord:
    """Stamps each line the gateway records with the time, and writes them all at the end.

    Kept in memory, not written line by line as the test gateway does: a write that blocks
    (the kernel throttling a process that dirties pages while the databases write heavily) would
    stall the gateway's event loop and stamp the calls queued behind it late. The benchmark's
    gateway outlives the workers it serves, so nothing is lost by writing at exit.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lines: list[str] = []

    def write(self, line: str) -> int:
        self._lines.append(f"{time.time():.6f} {line}")
        return len(line)

    def close(self) -> None:
        with self._path.open("a") as record:
            record.writelines(self._lines)


@dataclass(frozen=True)
class Call:
    arrived_at: float  # unix time
    message_id: int


class Gateway:
    """``with Gateway(workdir / "calls.txt", latency_ms=50) as gateway: gateway.url``."""

    def __init__(self, record: Path, *, latency_ms: float = 0.0) -> None:
        self.record = record
        self.latency_ms = latency_ms
        self.token = TOKEN
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        self._process, self.url = start_listening_process(
            "benchmarks.gateway",
            ["--latency-ms", str(self.latency_ms), "--record", str(self.record)],
            PROJECT_ROOT,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the gateway is not running")
        return self._process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def calls(self) -> list[Call]:
        if self._process is not None:
            raise RuntimeError("the gateway writes its record when it stops; leave its block first")
        if not self.record.exists():
            return []
        return [
            Call(float(stamp), int(message_id))
            for stamp, message_id in (line.split() for line in self.record.read_text().splitlines())
        ]


def duplicates(calls: list[Call]) -> int:
    """How many message ids were accepted more than once."""
    return sum(1 for count in Counter(call.message_id for call in calls).values() if count > 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The fake probe gateway with timed records.")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--record", type=Path, required=True)
    args = parser.parse_args(argv)
    run_event_loop(_serve(args.latency_ms / 1000, args.record))


async def _serve(latency: float, record_path: Path) -> None:
    record = _TimedRecord(record_path)
    try:
        gateway = ProbeGateway(
            token=TOKEN,
            latency=latency,
            record=cast(IO[str], record),
            keep_history=False,
        )
        await serve_until_signalled(gateway.server, "probe gateway")
    finally:
        record.close()


if __name__ == "__main__":
    main()
