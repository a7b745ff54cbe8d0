"""Fixtures for the security regressions: captured logs in either format, the engine fixtures."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.app import create_app
from sms_sender.config import LogFormat, LogMessages, Settings
from sms_sender.logging import configure_logging
from tests.admin.conftest import make_user  # noqa: F401 (fixtures used here too)
from tests.conftest import FakeClock
from tests.dispatch.conftest import make_engine  # noqa: F401
from tests.providers.conftest import make_message  # noqa: F401

LogCapture = Callable[..., io.StringIO]


@pytest.fixture
def capture_logs() -> Iterator[LogCapture]:
    """Send every log line to a buffer, in the format and message mode asked for."""

    def capture(log_format: LogFormat, messages: LogMessages = LogMessages.MASKED) -> io.StringIO:
        structlog.reset_defaults()
        buffer = io.StringIO()
        configure_logging(log_format, "INFO", stream=buffer, messages=messages)
        return buffer

    yield capture
    configure_logging()  # back to the defaults: console format, masked messages, stderr
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


@pytest.fixture(params=list(LogFormat))
def log_format(request: pytest.FixtureRequest) -> LogFormat:
    return LogFormat(request.param)


AppFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def make_app(settings: Settings, clock: FakeClock, clean_db: AsyncEngine) -> AppFactory:
    """An app over the test database with some settings changed, running while in the block."""

    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[FastAPI]:
        application = create_app(
            settings.model_copy(update=overrides), clock=clock, db_engine=clean_db
        )
        async with application.router.lifespan_context(application):
            yield application

    return build


@dataclass
class RawExchange:
    """What an ASGI call answered, and how much of the request body the app asked for."""

    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(
    app: FastAPI,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    chunks: Iterable[bytes] = (),
) -> RawExchange:
    """Call the app as a server would, counting the body chunks it reads (httpx hides that)."""
    pending = list(chunks)
    exchange = RawExchange(status=0, headers={}, body=b"")

    async def receive() -> dict[str, Any]:
        if not pending:
            return {"type": "http.disconnect"}
        exchange.chunks_read += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            exchange.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            exchange.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return exchange
