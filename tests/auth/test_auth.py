import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.auth import service
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_api_route_needs_a_token(app: FastAPI, anon_client: httpx.AsyncClient) -> None:
    """Walks every documented operation, so a route added later cannot forget authentication."""
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if path in PUBLIC_PATHS:
            continue
        assert path.startswith("/api/v1/"), f"{path} is outside /api/v1"
        for method in operations:
            response = await anon_client.request(method.upper(), _concrete(path))
            assert response.status_code == 401, f"{method} {path} answered without a token"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 25  # the contract has 25 operations; more may come, none may vanish


async def test_unknown_and_revoked_tokens_are_refused(
    anon_client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    async with sessionmaker() as session:
        token = await service.create_token(session, "ops", clock.now())
        await session.commit()
    ok = await anon_client.get("/api/v1/messages", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    wrong = await anon_client.get("/api/v1/messages", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    async with sessionmaker() as session:
        await service.revoke_token(session, "ops", clock.now())
        await session.commit()
    revoked = await anon_client.get(
        "/api/v1/messages", headers={"Authorization": f"Bearer {token}"}
    )
    assert revoked.status_code == 401


async def test_tokens_are_stored_hashed(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    async with sessionmaker() as session:
        token = await service.create_token(session, "ci", clock.now())
        stored = [t.token_hash for t in await service.list_tokens(session)]
    assert token not in stored
    assert stored == [service.hash_token(token)]


async def test_public_operations_routes(anon_client: httpx.AsyncClient) -> None:
    assert (await anon_client.get("/healthz")).json() == {"status": "ok"}
    assert (await anon_client.get("/readyz")).json() == {"status": "ready"}
    assert "sms_sender_http_requests_total" in (await anon_client.get("/metrics")).text
