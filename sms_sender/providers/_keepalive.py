"""A small HTTP/1.1 client for one origin: a pool of keep-alive connections, whole answers.

Why the HTTP provider does not use httpx: on the 2-core benchmark machine an httpx POST cost
about 1 ms of CPU (and its pool slowed down further with 100 connections), so httpx alone would
cap a worker near 1,000 messages a second; this client costs a few tens of microseconds.

It does only what a JSON gateway needs: POST with a bytes body; answers delimited by
Content-Length, chunked encoding or the end of the connection; TLS for https URLs; one deadline
for the whole exchange. No proxies, redirects, cookies, compression or HTTP/2. An idle connection
is reused only while younger than ``keepalive_expiry`` (under the 5 s idle timeout common in
servers such as uvicorn) and still open, and a request is never re-sent on its own: whether to
try again is the caller's decision, since the gateway may have acted on it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_MAX_HEAD_BYTES = 64 * 1024
_MAX_BODY_BYTES = 1024 * 1024
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class ExchangeFailed(Exception):
    """No complete answer arrived; the message says why, fit for a report's error column."""


class TooLate(Exception):
    """The deadline passed before the request was written: nothing was sent."""


class _Unparseable(Exception):
    pass


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0


class KeepAlivePool:
    """Keep-alive connections to the origin of ``base_url``; paths are joined to its path.

    Each exchange (waiting for a free connection, connecting, sending, reading the whole
    answer) must end within ``timeout`` seconds.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_connections: int = 100,
        keepalive_expiry: float = 4.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._path_prefix = parts.path.rstrip("/")
        host_header = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host_header if parts.port is None else f"{host_header}:{parts.port}"
        self._timeout = timeout
        self._keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._closed = False

    async def post(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        write_before: float = float("inf"),
    ) -> HttpAnswer:
        """POST ``body`` to ``path``; ExchangeFailed if no whole answer came in time.

        ``write_before`` is a deadline on the event loop's clock: waiting for a connection may
        take a while, and the request is not written once it has passed (TooLate).
        """
        request = self._encode_request(path, body, headers)
        try:
            async with asyncio.timeout(self._timeout), self._slots:
                return await self._exchange(request, write_before)
        except TimeoutError:
            raise ExchangeFailed(f"timeout: no answer within {self._timeout:g}s") from None

    async def aclose(self) -> None:
        """Close the idle connections; connections in use close when their exchange ends."""
        self._closed = True
        while self._idle:
            self._idle.pop().writer.close()

    async def _exchange(self, request: bytes, write_before: float) -> HttpAnswer:
        connection = self._take_idle() or await self._connect()
        reusable = False
        try:
            if asyncio.get_running_loop().time() >= write_before:
                reusable = True  # nothing was written on it
                raise TooLate
            connection.writer.write(request)
            await connection.writer.drain()
            answer, reusable = await _read_answer(connection.reader)
        except asyncio.IncompleteReadError:
            raise ExchangeFailed(
                "connection error: the gateway closed the connection without a complete answer"
            ) from None
        except (asyncio.LimitOverrunError, _Unparseable) as exc:
            raise ExchangeFailed(f"unparseable answer: {exc}") from None
        except OSError as exc:  # reset, broken pipe and the like
            raise ExchangeFailed(f"connection error: {type(exc).__name__}: {exc}") from None
        finally:
            self._release(connection, reusable)
        return answer

    def _take_idle(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()  # the most recently used is the least likely stale
            if (
                now - connection.idle_since < self._keepalive_expiry
                and not connection.reader.at_eof()
                and not connection.writer.is_closing()
            ):
                return connection
            connection.writer.close()
        return None

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl else None,
                limit=_MAX_HEAD_BYTES,
            )
        except OSError as exc:  # refused, unreachable, DNS failure, TLS failure
            raise ExchangeFailed(
                f"connection error: cannot connect to {self._host_header}: {exc}"
            ) from None
        return _Connection(reader, writer)

    def _release(self, connection: _Connection, reusable: bool) -> None:
        if reusable and not self._closed:
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.append(connection)
        else:
            connection.writer.close()

    def _encode_request(self, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [
            f"POST {self._path_prefix}{path} HTTP/1.1",
            f"Host: {self._host_header}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[HttpAnswer, bool]:
    """The final answer (1xx interim answers skipped) and whether the connection can be reused."""
    while True:
        version, status, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        if not 100 <= status < 200:
            break
    body, delimited = await _read_body(reader, status, headers)
    connection = headers.get("connection", "").lower()
    persistent = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return HttpAnswer(status, headers, body), delimited and persistent


def _parse_head(head: bytes) -> tuple[str, int, dict[str, str]]:
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    status_text = rest[:3]
    if not version.startswith("HTTP/1.") or not status_text.isdigit():
        raise _Unparseable(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return version, int(status_text), headers


async def _read_body(
    reader: asyncio.StreamReader, status: int, headers: dict[str, str]
) -> tuple[bytes, bool]:
    """The body and whether its end was marked (so the connection is still in step)."""
    if status in (204, 304):
        return b"", True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader), True
    if "content-length" in headers:
        length = _content_length(headers["content-length"])
        return await reader.readexactly(length), True
    return await _read_to_end(reader), False


def _content_length(value: str) -> int:
    if not value.isdigit():
        raise _Unparseable(f"bad Content-Length {value[:40]!r}")
    length = int(value)
    if length > _MAX_BODY_BYTES:
        raise _Unparseable(f"answer of {length} bytes is too large")
    return length


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_field = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise _Unparseable(f"bad chunk size {size_field[:40]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields carry nothing we use
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY_BYTES:
            raise _Unparseable("chunked answer is too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await reader.read(_READ_CHUNK):
        total += len(chunk)
        if total > _MAX_BODY_BYTES:
            raise _Unparseable("answer is too large")
        chunks.append(chunk)
    return b"".join(chunks)
