"""Just enough HTTP/1.1 for the fake gateways: keep-alive, Content-Length bodies, no framework.

A raw asyncio server because the probe gateway must keep up with benchmarks of thousands of
messages per second on a small machine; a framework's per-request cost would be what we measure.
Requests on one connection are answered in order (pipelining works); chunked request bodies are
refused with 411, which no client of ours sends.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import struct
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from subprocess import Popen
from types import TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"
_MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    # Bytes nobody asked for, appended to the answer (``stray_after`` None) or written on the
    # connection that many seconds later, while it is idle (a broken gateway or proxy): a client
    # must never read them as its next answer.
    stray: bytes = b""
    stray_after: float | None = None

    @classmethod
    def json(cls, status: int, payload: object) -> Response:
        return cls(status, json.dumps(payload, ensure_ascii=False).encode())

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/html") -> Response:
        return cls(status, text.encode(), content_type)


class HangUp(Exception):
    """Raised by a handler to drop the connection without answering (a gateway that crashed)."""


class Reset(HangUp):
    """Raised by a handler to reset the connection (TCP RST) after reading the request."""


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 (port 0 picks a free one) until ``stop()``."""

    def __init__(self, handler: Handler, *, host: str = LOOPBACK, port: int = 0) -> None:
        self._handler = handler
        self._host = host
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.connections_opened = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._host, self._requested_port, limit=_MAX_HEAD_BYTES
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task rather than the one asyncio would make for a coroutine callback: stop()
        # cancels it, and Python 3.11 logs a spurious error for a cancelled callback task.
        self.connections_opened += 1
        task = asyncio.create_task(self._serve_connection(reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await self._answer_requests(reader, writer)
        except _BadRequest as exc:
            writer.write(encode(Response.text(exc.status, str(exc), "text/plain"), False))
        except Reset:
            sock = writer.get_extra_info("socket")
            if sock is not None:  # linger 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (ConnectionError, HangUp):
            pass  # the client went away, or the handler chose to drop it: nothing to answer
        finally:
            writer.close()

    async def _answer_requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            parsed = await _read_request(reader)
            if parsed is None:
                return
            request, keep_alive = parsed
            response = await self._handler(request)
            appended = response.stray if response.stray_after is None else b""
            writer.write(encode(response, keep_alive) + appended)
            await writer.drain()
            if response.stray and response.stray_after is not None:
                await asyncio.sleep(response.stray_after)
                writer.write(response.stray)
                await writer.drain()
            if not keep_alive:
                return


async def _read_request(reader: asyncio.StreamReader) -> tuple[Request, bool] | None:
    """The next request and whether the connection stays open; None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadRequest(400, "incomplete request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _BadRequest(431, "request head too large") from None
    request_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    try:
        method, target, version = request_line.split(" ", 2)
    except ValueError:
        raise _BadRequest(400, f"malformed request line {request_line!r}") from None
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadRequest(411, "send a Content-Length, not a chunked body")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest(400, "Content-Length is not a number") from None
    body = await reader.readexactly(length) if length > 0 else b""
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    path = target.split("?", 1)[0]
    return Request(method.upper(), path, headers, body), keep_alive


def encode(response: Response, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    head = (
        f"HTTP/1.1 {response.status} {reason}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
    )
    head += "".join(f"{name}: {value}\r\n" for name, value in response.headers)
    if not keep_alive:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + response.body


async def serve_until_signalled(server: LoopbackServer, name: str) -> None:
    """Run ``server`` until SIGTERM or SIGINT; announce its URL as the first line on stdout.

    A parent process started with ``--port 0`` reads that line to learn the port.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(f"{name} listening on {server.base_url}", flush=True)
        await stop.wait()
    print(f"{name} stopped", file=sys.stderr, flush=True)


class FakeService(ABC):
    """What the fake gateways share: a loopback server, ``async with``, and waiting for state.

    A subclass answers requests in ``_handle``, calls ``_notify()`` after each change, and says
    in ``_progress()`` what it has seen, for the message of a wait that timed out.
    """

    def __init__(self, *, port: int, host: str = LOOPBACK) -> None:
        self._changed = asyncio.Condition()
        self._server = LoopbackServer(self._handle, host=host, port=port)

    @property
    def server(self) -> LoopbackServer:
        return self._server

    async def __aenter__(self) -> Self:
        await self._server.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._server.stop()

    @abstractmethod
    async def _handle(self, request: Request) -> Response:
        """The answer to one request."""

    def _progress(self) -> str:
        return ""

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, reached: Callable[[], bool], what: str, within: float) -> None:
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(reached)
        except TimeoutError:
            raise TimeoutError(f"waited {within:g}s for {what}; {self._progress()}") from None


def start_listening_process(module: str, arguments: list[str], cwd: Path) -> tuple[Popen[str], str]:
    """``python -m module arguments…`` and the URL its first line says it listens on."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *arguments], cwd=cwd, stdout=subprocess.PIPE, text=True
    )
    ready = process.stdout.readline() if process.stdout else ""
    if "listening on " not in ready:
        process.kill()
        process.wait()
        raise RuntimeError(f"{module} did not start (it said {ready!r})")
    return process, ready.rsplit("listening on ", 1)[1].strip()
