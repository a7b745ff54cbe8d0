"""Edges of the HTTP layer: odd input gets a 4xx a person can act on, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.messages import service as messages_service

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.mark.parametrize("tag", ["\x00", "a\x00b", "tab\there"])
async def test_control_characters_in_a_tag_filter_are_422(
    client: httpx.AsyncClient, tag: str
) -> None:
    response = await client.get("/api/v1/clients", params={"tag": tag})
    assert response.status_code == 422
    assert "control characters" in response.json()["detail"]


@pytest.mark.parametrize("zone", ["localtime", "Factory", "europe/moscow"])
async def test_a_zone_that_is_not_an_iana_zone_is_refused(
    client: httpx.AsyncClient, zone: str
) -> None:
    response = await client.post("/api/v1/clients", json={"phone": "79001234567", "timezone": zone})
    assert response.status_code == 422
    assert "IANA time zone" in response.json()["detail"]


async def test_json_sent_as_text_is_415_naming_the_right_type(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/messages", content=b'{"text": "hi"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


async def test_a_busy_database_is_503_with_retry_after(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def locked(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT …", {}, Exception("database is locked"))

    monkeypatch.setattr(messages_service, "create", locked)
    response = await client.post("/api/v1/messages", json={"text": "hi"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


async def test_a_slow_csv_upload_does_not_hold_up_other_requests(
    client: httpx.AsyncClient,
) -> None:
    """The import receives its body before it writes, so reads and writes go on meanwhile."""
    rest_of_file = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"phone,operator_code,tag,timezone\n79001234567,,vip,\n"
        await rest_of_file.wait()
        yield b"79001234568,,vip,\n"

    upload = asyncio.create_task(
        client.post(
            "/api/v1/clients/import", content=slow_body(), headers={"Content-Type": "text/csv"}
        )
    )
    async with asyncio.timeout(5):
        assert (await client.get("/api/v1/tags")).status_code == 200
        created = await client.post("/api/v1/messages", json={"text": "meanwhile"})
        assert created.status_code == 201
    rest_of_file.set()
    assert (await upload).json()["imported"] == 2


async def test_a_failed_commit_is_never_answered_201(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit of work commits before the answer is sent, so a 201 means committed."""

    async def commit_fails(_self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(AsyncSession, "commit", commit_fails)
    response = await client.post("/api/v1/messages", json={"text": "never stored"})
    assert response.status_code == 500


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/api/v1/mailings/preview", "POST"),
        ("PUT", "/api/v1/clients/opt-out", "POST"),
        ("DELETE", "/api/v1/clients/import", "POST"),
    ],
)
async def test_a_fixed_path_beside_an_id_path_answers_405_with_its_own_methods(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    # /mailings/{id} and /clients/{id} once took "preview" and "opt-out" for an id: a 422.
    response = await client.request(method, path, json={})
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == allowed


async def test_a_number_is_not_a_consent_time(client: httpx.AsyncClient) -> None:
    # pydantic alone would take 0 as 1970-01-01T00:00:00Z.
    response = await client.post(
        "/api/v1/clients",
        json={"phone": "79001234567", "consent_at": 0, "consent_source": "web form"},
    )
    assert response.status_code == 422, response.text
    assert "ISO 8601" in response.text
