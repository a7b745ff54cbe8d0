"""Loopback plumbing: free ports and waiting for a process to answer. Only 127.0.0.1, ever."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import httpx

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


class ProcessDied(RuntimeError):
    pass


async def wait_until_answering(
    url: str, process: subprocess.Popen[bytes], *, within: float = 30.0
) -> None:
    """Poll ``url`` until it answers 2xx; fail at once if the process has exited."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=1.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ProcessDied(f"{process.args!r} exited with {process.returncode}")
            try:
                if (await http.get(url)).is_success:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {within:g}s")
