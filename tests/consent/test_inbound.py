"""The inbound webhook: a gateway forwards replies; a stop word opts the phone out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from sms_sender.config import Settings

pytestmark = pytest.mark.usefixtures("clean_db")

SECRET = "gateway-shared-secret"
PHONE = "79001234567"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        provider="fake",
        inbound_secret=SECRET,
        inbound_secret_header="X-Gateway-Key",
    )


@pytest.fixture
async def gateway(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a gateway reaches it: the shared secret, no bearer token."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"X-Gateway-Key": SECRET}
    ) as gateway:
        yield gateway


async def _opted_out(client: httpx.AsyncClient, client_id: int) -> bool:
    return (await client.get(f"/api/v1/clients/{client_id}")).json()["opted_out_at"] is not None


@pytest.mark.parametrize(
    "text", ["STOP", "stop", " Stop! ", "СТОП", "стоп.", "Отписка", "ОТПИСАТЬСЯ!!!", "s-t-o-p"]
)
async def test_a_stop_word_opts_the_phone_out(
    client: httpx.AsyncClient, gateway: httpx.AsyncClient, text: str
) -> None:
    created = (await client.post("/api/v1/clients", json={"phone": PHONE})).json()

    response = await gateway.post(
        "/api/v1/inbound", json={"phone": "+7 900 123-45-67", "text": text}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"stop": True, "client_id": created["id"]}
    assert await _opted_out(client, created["id"])
    history = (await client.get(f"/api/v1/clients/{created['id']}/consent-history")).json()
    (event,) = history["items"]
    assert (event["change"], event["actor"]) == ("opted_out", "inbound webhook")


@pytest.mark.parametrize("text", ["Stop sending me the wrong size", "спасибо", "", "STOP STOP 2"])
async def test_other_replies_change_nothing(
    client: httpx.AsyncClient, gateway: httpx.AsyncClient, text: str
) -> None:
    created = (await client.post("/api/v1/clients", json={"phone": PHONE})).json()

    response = await gateway.post("/api/v1/inbound", json={"phone": PHONE, "text": text})

    assert response.json() == {"stop": False, "client_id": None}
    assert not await _opted_out(client, created["id"])


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "inbound_secret_missing"),
        ({"X-Gateway-Key": "wrong"}, 403, "inbound_secret_wrong"),
        ({"X-Inbound-Secret": SECRET}, 401, "inbound_secret_missing"),
    ],
)
async def test_without_the_right_secret_nothing_changes(
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    created = (await client.post("/api/v1/clients", json={"phone": PHONE})).json()

    response = await anon_client.post(
        "/api/v1/inbound", json={"phone": PHONE, "text": "STOP"}, headers=headers
    )

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert "X-Gateway-Key" in response.json()["detail"]
    assert response.json()["code"] == code  # the console's i18n has its Russian text
    assert not await _opted_out(client, created["id"])


async def test_a_bearer_token_is_not_the_secret(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/inbound", json={"phone": PHONE, "text": "STOP"})
    assert response.status_code == 401


async def test_configured_stop_words_replace_the_defaults(
    app: FastAPI, client: httpx.AsyncClient, gateway: httpx.AsyncClient
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"stop_words": "HALT, Хватит"})
    created = (await client.post("/api/v1/clients", json={"phone": PHONE})).json()

    assert (await gateway.post("/api/v1/inbound", json={"phone": PHONE, "text": "stop"})).json()[
        "stop"
    ] is False
    reply = await gateway.post("/api/v1/inbound", json={"phone": PHONE, "text": "хватит!"})
    assert reply.json() == {"stop": True, "client_id": created["id"]}


async def test_a_stop_from_an_unknown_phone_suppresses_it(
    client: httpx.AsyncClient, gateway: httpx.AsyncClient
) -> None:
    response = await gateway.post("/api/v1/inbound", json={"phone": PHONE, "text": "СТОП"})
    assert response.json() == {"stop": True, "client_id": None}

    created = (await client.post("/api/v1/clients", json={"phone": PHONE})).json()
    assert created["opted_out_at"] is not None


async def test_the_webhook_is_off_without_a_secret(
    app: FastAPI, anon_client: httpx.AsyncClient
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"inbound_secret": SecretStr("")})
    response = await anon_client.post(
        "/api/v1/inbound", json={"phone": PHONE, "text": "STOP"}, headers={"X-Gateway-Key": "x"}
    )
    assert response.status_code == 403
    assert "SMS_SENDER_INBOUND_SECRET" in response.json()["detail"]
    assert response.json()["code"] == "inbound_off"


async def test_a_malformed_phone_is_422(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post("/api/v1/inbound", json={"phone": "12345", "text": "STOP"})
    assert response.status_code == 422
