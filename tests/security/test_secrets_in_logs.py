"""No secret reaches a log line, whatever fails: tracebacks show no locals, SQL no parameters.

Each test provokes an error on a path that logs a traceback or a database error, in both log
formats, and greps everything logged for the secrets that were in play at the time.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import text

from sms_sender.app import create_app
from sms_sender.auth.endpoints import require_token
from sms_sender.config import LogFormat, Settings
from sms_sender.db import create_engine
from sms_sender.providers import OutgoingMessage, SendResult
from sms_sender.web import SessionDep
from tests.arrange import Arrange, ClientSpec
from tests.dispatch.conftest import EngineFactory, eventually
from tests.security.conftest import LogCapture

GATEWAY_TOKEN = "gateway-token-0f9e8d7c"
AERO_KEY = "aero-key-5a4b3c2d"
DB_PASSWORD = "db-password-1a2b3c4d"
SECRET_PHONE = "79995554433"


def _assert_no_secret(logged: str, *secrets: str) -> None:
    assert logged, "the error was not logged at all"
    for secret in secrets:
        assert secret not in logged, f"{secret!r} is in the log:\n{logged}"


async def _get(app: FastAPI, path: str, token: str) -> httpx.Response:
    """GET as a real server would answer it: an unhandled error is a 500, not raised here."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.usefixtures("clean_db")
async def test_a_500_does_not_log_the_callers_token(
    app: FastAPI, token: str, capture_logs: LogCapture, log_format: LogFormat
) -> None:
    @app.get("/api/v1/boom", dependencies=[Depends(require_token)])
    async def boom() -> None:
        raise RuntimeError("a bug in a route")

    logs = capture_logs(log_format)

    response = await _get(app, "/api/v1/boom", token)

    assert response.status_code == 500
    logged = logs.getvalue()
    assert "a bug in a route" in logged  # the traceback is there, only its locals are not
    _assert_no_secret(logged, token)


@pytest.mark.usefixtures("clean_db")
async def test_a_database_error_logs_no_sql_parameters(
    app: FastAPI, token: str, capture_logs: LogCapture, log_format: LogFormat
) -> None:
    @app.get("/api/v1/broken-query", dependencies=[Depends(require_token)])
    async def broken_query(session: SessionDep) -> None:
        statement = text("SELECT phone FROM no_such_table WHERE phone = :phone")
        await session.execute(statement, {"phone": SECRET_PHONE})

    logs = capture_logs(log_format)

    response = await _get(app, "/api/v1/broken-query", token)

    assert response.status_code == 500
    logged = logs.getvalue()
    assert "no_such_table" in logged
    _assert_no_secret(logged, SECRET_PHONE)


async def test_an_unreachable_database_does_not_log_its_password(
    capture_logs: LogCapture, log_format: LogFormat
) -> None:
    # Nothing listens on port 1 of loopback: every connection attempt is refused.
    url = f"postgresql://sms:{DB_PASSWORD}@127.0.0.1:1/sms"
    engine = create_engine(url)
    app = create_app(Settings(database_url=url), db_engine=engine)
    logs = capture_logs(log_format)
    try:
        async with app.router.lifespan_context(app):
            api = await _get(app, "/api/v1/clients", "sms_unchecked")
            ready = await _get(app, "/readyz", "")
    finally:
        await engine.dispose()

    assert (api.status_code, ready.status_code) == (500, 503)
    _assert_no_secret(logs.getvalue(), DB_PASSWORD)


class _BrokenGateway:
    """A provider with a bug: it raises while holding its credentials, as a parser bug would."""

    name = "broken"
    idempotent = False

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        authorization = f"Bearer {GATEWAY_TOKEN}"
        basic = base64.b64encode(f"owner@example.com:{AERO_KEY}".encode()).decode()
        headers = {"Authorization": authorization, "X-Basic": basic, "X-Key": AERO_KEY}
        raise ValueError(f"unparseable answer to {len(batch)} messages with {len(headers)} headers")


@pytest.mark.usefixtures("clean_db")
async def test_a_provider_that_raises_does_not_log_its_credentials(
    arrange: Arrange, make_engine: EngineFactory, capture_logs: LogCapture, log_format: LogFormat
) -> None:
    logs = capture_logs(log_format)
    await arrange.clients([ClientSpec(SECRET_PHONE)])
    mailing_id = await arrange.mailing(text="Hello")
    await arrange.reports(mailing_id)

    async def settled() -> bool:
        return (await arrange.statuses(mailing_id))["pending"] == 0

    async with make_engine(_BrokenGateway()).running():
        await eventually(settled, what="the failed send settled")

    logged = logs.getvalue()
    assert "unparseable answer" in logged
    basic = base64.b64encode(f"owner@example.com:{AERO_KEY}".encode()).decode()
    _assert_no_secret(logged, GATEWAY_TOKEN, AERO_KEY, basic, SECRET_PHONE)
