"""The HTTP provider's keep-alive client against raw answers written byte by byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from sms_sender.providers._keepalive import ExchangeFailed, KeepAlivePool

OK_BODY = b'{"code": 0}'
HEADERS = {"Content-Type": "application/json"}


class RawServer:
    """Answers every request with the next canned bytes; counts connections and requests."""

    def __init__(self, *answers: bytes, close_after_answer: bool = False) -> None:
        self.answers = list(answers)
        self.close_after_answer = close_after_answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answers.pop(0))
                await writer.drain()
                if self.close_after_answer:
                    break
        except asyncio.IncompleteReadError:
            pass  # the client closed its end
        finally:
            writer.close()


@asynccontextmanager
async def serving(server: RawServer) -> AsyncIterator[RawServer]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listener.close()


def answer(head: str, body: bytes = OK_BODY) -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body


def with_length(body: bytes = OK_BODY, status: str = "200 OK") -> bytes:
    return answer(f"HTTP/1.1 {status}\nContent-Length: {len(body)}", body)


PoolFactory = Callable[..., KeepAlivePool]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    pools: list[KeepAlivePool] = []

    def make(
        url: str, *, max_connections: int = 10, keepalive_expiry: float = 4.0
    ) -> KeepAlivePool:
        pool = KeepAlivePool(
            url, timeout=1.0, max_connections=max_connections, keepalive_expiry=keepalive_expiry
        )
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.aclose()


async def test_request_carries_host_length_and_headers(make_pool: PoolFactory) -> None:
    async with serving(RawServer(with_length())) as server:
        pool = make_pool(f"{server.url}/base/")
        answer_ = await pool.post("/send/1", b'{"id": 1}', HEADERS)

    assert (answer_.status, answer_.body) == (200, OK_BODY)
    head, body = server.requests[0].split(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /base/send/1 HTTP/1.1"
    assert f"Host: {server.url.removeprefix('http://')}" in lines
    assert "Content-Length: 9" in lines
    assert "Content-Type: application/json" in lines
    assert body == b'{"id": 1}'


async def test_chunked_answer_is_joined_and_connection_reused(make_pool: PoolFactory) -> None:
    chunks = b'5;ext=1\r\n{"cod\r\n6\r\ne": 0}\r\n0\r\n\r\n'  # {"code": 0} in two chunks
    chunked = answer("HTTP/1.1 200 OK\nTransfer-Encoding: chunked", chunks)
    async with serving(RawServer(chunked, with_length())) as server:
        pool = make_pool(server.url)
        first = await pool.post("/send/1", b"{}", HEADERS)
        second = await pool.post("/send/2", b"{}", HEADERS)

    assert first.body == OK_BODY
    assert second.body == OK_BODY
    assert server.connections == 1


async def test_answer_without_length_is_read_to_the_end(make_pool: PoolFactory) -> None:
    async with serving(
        RawServer(answer("HTTP/1.0 200 OK"), with_length(), close_after_answer=True)
    ) as server:
        pool = make_pool(server.url)
        first = await pool.post("/send/1", b"{}", HEADERS)
        second = await pool.post("/send/2", b"{}", HEADERS)

    assert first.body == OK_BODY
    assert second.body == OK_BODY
    assert server.connections == 2  # a body delimited by closing cannot share its connection


async def test_connection_close_is_honoured(make_pool: PoolFactory) -> None:
    closing = answer(f"HTTP/1.1 200 OK\nContent-Length: {len(OK_BODY)}\nConnection: close")
    async with serving(RawServer(closing, with_length(), close_after_answer=True)) as server:
        pool = make_pool(server.url)
        await pool.post("/send/1", b"{}", HEADERS)
        await pool.post("/send/2", b"{}", HEADERS)

    assert server.connections == 2


async def test_idle_connection_closed_by_the_server_is_not_reused(
    make_pool: PoolFactory,
) -> None:
    async with serving(RawServer(with_length(), with_length(), close_after_answer=True)) as server:
        pool = make_pool(server.url)
        await pool.post("/send/1", b"{}", HEADERS)
        await asyncio.sleep(0.05)  # lets the server's FIN reach the idle connection
        second = await pool.post("/send/2", b"{}", HEADERS)

    assert second.status == 200
    assert server.connections == 2


async def test_expired_idle_connection_is_replaced(make_pool: PoolFactory) -> None:
    async with serving(RawServer(with_length(), with_length())) as server:
        pool = make_pool(server.url, keepalive_expiry=0.0)
        await pool.post("/send/1", b"{}", HEADERS)
        await pool.post("/send/2", b"{}", HEADERS)

    assert server.connections == 2


async def test_interim_answer_is_skipped(make_pool: PoolFactory) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + with_length()
    async with serving(RawServer(interim)) as server:
        pool = make_pool(server.url)
        result = await pool.post("/send/1", b"{}", HEADERS)

    assert (result.status, result.body) == (200, OK_BODY)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "unparseable answer: not an HTTP/1.x status line"),
        (answer("HTTP/1.1 200 OK\nContent-Length: ten"), "unparseable answer: bad Content-Length"),
        (
            answer("HTTP/1.1 200 OK\nContent-Length: 99999999"),
            "unparseable answer: answer of 99999999 bytes is too large",
        ),
        (
            answer("HTTP/1.1 200 OK\nTransfer-Encoding: chunked", b"zz\r\n"),
            "unparseable answer: bad chunk size",
        ),
        (
            answer("HTTP/1.1 200 OK\nContent-Length: 50", b"short"),
            "connection error: the gateway closed the connection without a complete answer",
        ),
    ],
)
async def test_broken_answers_fail_the_exchange(
    make_pool: PoolFactory, raw: bytes, reason: str
) -> None:
    async with serving(RawServer(raw, close_after_answer=True)) as server:
        pool = make_pool(server.url)
        with pytest.raises(ExchangeFailed) as failure:
            await pool.post("/send/1", b"{}", HEADERS)

    assert str(failure.value).startswith(reason)


async def test_pool_bounds_open_connections(make_pool: PoolFactory) -> None:
    async with serving(RawServer(*[with_length()] * 6)) as server:
        pool = make_pool(server.url, max_connections=2)
        results = await asyncio.gather(*(pool.post(f"/send/{n}", b"{}", HEADERS) for n in range(6)))

    assert {result.status for result in results} == {200}
    assert server.connections == 2


def test_rejects_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="is not an http"):
        KeepAlivePool("ftp://example.com", timeout=1.0)
