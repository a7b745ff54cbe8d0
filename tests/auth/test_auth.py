import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.auth import service
from sms_sender.auth.service import RecentTokens, TokenHolder
from sms_sender.config import Settings
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc"}
# Gateways call it with a shared secret instead (tests/consent/test_inbound.py).
SECRET_PATHS = {"/api/v1/inbound"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_api_route_needs_a_token(app: FastAPI, anon_client: httpx.AsyncClient) -> None:
    """Walks every documented operation, so a route added later cannot forget authentication."""
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if path in PUBLIC_PATHS or path in SECRET_PATHS:
            continue
        assert path.startswith("/api/v1/"), f"{path} is outside /api/v1"
        for method in operations:
            response = await anon_client.request(method.upper(), _concrete(path))
            assert response.status_code == 401, f"{method} {path} answered without a token"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 25  # the contract has 25 operations; more may come, none may vanish


async def _create_token(sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock) -> str:
    async with sessionmaker() as session:
        token = await service.create_token(session, "ops", clock.now())
        await session.commit()
    return token


async def _revoke_token(sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock) -> None:
    async with sessionmaker() as session:
        await service.revoke_token(session, "ops", clock.now())
        await session.commit()


async def _status_with(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get("/api/v1/messages", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_unknown_and_revoked_tokens_are_refused(
    anon_client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    settings: Settings,
) -> None:
    token = await _create_token(sessionmaker, clock)
    assert await _status_with(anon_client, token) == 200
    assert await _status_with(anon_client, "nope") == 401
    await _revoke_token(sessionmaker, clock)
    # The API trusts a token it has just found active for token_cache_seconds, no longer.
    clock.advance(seconds=settings.token_cache_seconds)
    assert await _status_with(anon_client, token) == 401


async def test_a_revoked_token_works_at_most_token_cache_seconds(
    anon_client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    settings: Settings,
) -> None:
    token = await _create_token(sessionmaker, clock)
    assert await _status_with(anon_client, token) == 200
    await _revoke_token(sessionmaker, clock)
    clock.advance(seconds=settings.token_cache_seconds * 0.9)
    assert await _status_with(anon_client, token) == 200
    clock.advance(seconds=settings.token_cache_seconds * 0.1)
    assert await _status_with(anon_client, token) == 401
    clock.advance(seconds=settings.token_cache_seconds)
    assert await _status_with(anon_client, token) == 401


async def test_without_a_token_cache_revocation_is_immediate(
    app: FastAPI,
    anon_client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    app.state.recent_tokens = RecentTokens(timedelta(0))
    token = await _create_token(sessionmaker, clock)
    assert await _status_with(anon_client, token) == 200
    await _revoke_token(sessionmaker, clock)
    assert await _status_with(anon_client, token) == 401


def test_recent_tokens_forget_on_a_clock_going_back_and_when_full() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    recent = RecentTokens(timedelta(seconds=1), max_entries=2)
    recent.remember("a", now, TokenHolder("token a"))
    assert recent.vouch("a", now + timedelta(milliseconds=999)) == TokenHolder("token a")
    assert recent.vouch("a", now + timedelta(seconds=1)) is None
    assert recent.vouch("a", now - timedelta(milliseconds=1)) is None
    recent.remember("b", now, TokenHolder("token b"))
    recent.remember("c", now, TokenHolder("token c", reads_audit=True))  # full: all dropped
    assert recent.vouch("a", now) is None
    assert recent.vouch("c", now) == TokenHolder("token c", reads_audit=True)


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
