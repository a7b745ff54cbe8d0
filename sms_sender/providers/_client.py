"""The gateway client: aiohttp sessions, one POST, and *when* it failed.

Both HTTP providers send through :func:`post`, which either returns the gateway's whole answer
(status, headers, at most ``MAX_ANSWER_BYTES`` of body) or raises one of two errors that say
whether the request could have reached the gateway:

* :class:`NotSent`: nothing left this process (DNS, connect, TLS, proxy, no pooled connection in
  time); sending again is safe. :class:`TooLate` is the special case "the message's deadline
  passed before it could be written".
* :class:`AnswerLost`: the request was (or may have been) written, then no readable answer came
  (read timeout, reset, a malformed or too large answer); the gateway may have the message.

``timeout`` bounds two waits: getting a connection (pool wait, DNS, connect, TLS) and each wait
for answer bytes after the request was written.

aiohttp (its C parser) rather than httpx: on the 2-core benchmark machine an httpx POST cost
about 1 ms of CPU, aiohttp's tens of microseconds. One thing aiohttp does not do is refuse to
reuse an idle pooled connection on which the server sent bytes nobody asked for: the next
request on it would read that stray answer as its own (a rejection recorded as an acceptance).
``_CleanConnector`` closes such a connection instead of lending it.
"""

from __future__ import annotations

import asyncio
import functools
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.client_proto import ResponseHandler
from multidict import CIMultiDictProxy
from yarl import URL

from sms_sender import __version__

MAX_ANSWER_BYTES = 64 * 1024
# Idle connections are dropped before the 5 s idle timeout common in servers (uvicorn, many
# load balancers), so a request is rarely written to a connection the server is closing.
KEEPALIVE_SECONDS = 4.0


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class NotSent(Exception):
    """Nothing reached the gateway; the message says why, fit for a report's error column."""


class TooLate(NotSent):
    """The message's deadline passed before it could be written: nothing was sent."""


class AnswerLost(Exception):
    """The request left (or may have) and no readable answer came back."""


class _CleanConnector(aiohttp.TCPConnector):
    """A TCP connector that never lends a pooled connection holding unread bytes."""

    async def _get(self, key: Any, traces: list[Any]) -> Any:
        while (connection := await super()._get(key, traces)) is not None:
            protocol: ResponseHandler | None = connection.protocol
            if protocol is not None and not protocol.should_close:
                return connection
            connection.close()  # a stray answer or an error arrived while it was idle
        return None


@dataclass(frozen=True, slots=True)
class GatewaySessions:
    """The process's gateway sessions: sends, and status questions on their own connections.

    Delivery-status polling has its own small pool, so it never takes a connection a send needs.
    """

    sends: aiohttp.ClientSession
    status: aiohttp.ClientSession

    async def aclose(self) -> None:
        await self.sends.close()
        await self.status.close()


def proxy_for(url: str) -> str | None:
    """The proxy the standard variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY...) give ``url``."""
    parts = urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def create_session(*, max_connections: int) -> aiohttp.ClientSession:
    """A session of at most ``max_connections`` keep-alive connections; proxies from the env."""
    connector = _CleanConnector(
        limit=max_connections, limit_per_host=0, keepalive_timeout=KEEPALIVE_SECONDS
    )
    return aiohttp.ClientSession(
        connector=connector,
        # Not trust_env: aiohttp would then read ~/.netrc and the proxy variables in a thread
        # for every request. ``proxy_for`` reads the variables once per gateway instead.
        trust_env=False,
        # Identity asked for by name rather than aiohttp's own Accept-Encoding skipped: a skip
        # list costs a header dict built per request (docs/benchmarks.md, finding 9).
        headers={"User-Agent": f"sms-sender/{__version__}", "Accept-Encoding": "identity"},
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
    )


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,  # noqa: ASYNC109 - two phase timeouts, not one for the whole call
    write_before: float | None = None,
    proxy: str | None = None,
) -> GatewayAnswer:
    """POST ``body`` and read the whole answer; ``write_before`` is a loop time deadline."""
    connect_within = timeout
    if write_before is not None:
        connect_within = min(timeout, write_before - asyncio.get_running_loop().time())
        if connect_within <= 0:
            raise TooLate("end_at passed before the message could be written")
    limits = _timeouts(connect_within, timeout)
    try:
        async with session.post(
            # Our URLs are built from a checked base and a number: already encoded.
            URL(url, encoded=True),
            data=body,
            headers=headers,
            timeout=limits,
            allow_redirects=False,
            proxy=proxy,
        ) as response:
            return GatewayAnswer(response.status, response.headers, await _read_capped(response))
    except aiohttp.ConnectionTimeoutError:
        if connect_within < timeout:
            raise TooLate("end_at passed while waiting for a gateway connection") from None
        raise NotSent(f"timeout: no connection to the gateway within {timeout:g}s") from None
    except aiohttp.ClientConnectorError as exc:
        raise NotSent(_connect_failure(exc)) from None
    except aiohttp.ClientHttpProxyError as exc:  # the proxy refused the tunnel: nothing left it
        raise NotSent(f"the proxy refused to connect to the gateway: HTTP {exc.status}") from None
    except aiohttp.ServerFingerprintMismatch:
        raise NotSent("TLS error: the gateway's certificate fingerprint does not match") from None
    except aiohttp.SocketTimeoutError:
        raise AnswerLost(f"timeout: no answer within {timeout:g}s") from None
    except aiohttp.ServerDisconnectedError:
        raise AnswerLost("the gateway closed the connection without an answer") from None
    except aiohttp.ClientPayloadError as exc:
        raise AnswerLost(f"incomplete answer: {_describe(exc)}") from None
    except aiohttp.ClientResponseError as exc:
        raise AnswerLost(f"malformed answer: {_describe(exc)}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise AnswerLost(
            f"connection error after the request was written: {_describe(exc)}"
        ) from None


@functools.lru_cache(maxsize=64)
def _timeouts(connect: float, read: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    if (response.content_length or 0) > MAX_ANSWER_BYTES:
        response.close()  # the rest is never read, so the connection is not reused
        raise AnswerLost(f"answer larger than {MAX_ANSWER_BYTES // 1024} KiB")
    body = bytearray()
    while chunk := await response.content.read(MAX_ANSWER_BYTES + 1 - len(body)):
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            response.close()
            raise AnswerLost(f"answer larger than {MAX_ANSWER_BYTES // 1024} KiB")
    return bytes(body)


def _connect_failure(exc: aiohttp.ClientConnectorError) -> str:
    where = f"{exc.host}:{exc.port}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"connection error: cannot resolve {exc.host}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS error with {where}: {_describe(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"connection error: cannot connect to the proxy {where}"
    return f"connection error: cannot connect to {where}: {exc.strerror or _describe(exc)}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
