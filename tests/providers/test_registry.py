"""build_provider picks the provider SMS_SENDER_PROVIDER names and refuses unusable settings."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sms_sender.config import Settings
from sms_sender.providers import (
    ConsoleProvider,
    FakeProvider,
    HttpProvider,
    ProviderConfigurationError,
    SmsAeroProvider,
    build_provider,
    close_provider,
    create_http_client,
    delivery_tracker,
)


@pytest.fixture(autouse=True)
def _no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment; these tests must see only what they pass."""
    for name in (
        "SMS_SENDER_PROVIDER",
        "SMS_SENDER_HTTP_URL",
        "SMS_SENDER_HTTP_TOKEN",
        "SMSAERO_EMAIL",
        "SMSAERO_API_KEY",
        "SMSAERO_SIGN",
        "SMSAERO_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def settings(**values: Any) -> Settings:
    return Settings(**values)


async def test_console_is_the_default(http_client: httpx.AsyncClient) -> None:
    assert isinstance(build_provider(settings(), http_client), ConsoleProvider)


async def test_fake_can_be_chosen(http_client: httpx.AsyncClient) -> None:
    assert isinstance(build_provider(settings(provider="fake"), http_client), FakeProvider)


async def test_http_is_built_from_its_settings(http_client: httpx.AsyncClient) -> None:
    provider = build_provider(
        settings(provider="http", http_url="http://127.0.0.1:9/api", http_token="t0ken"),
        http_client,
    )
    try:
        assert isinstance(provider, HttpProvider)
        assert delivery_tracker(provider) is None
    finally:
        await close_provider(provider)


async def test_smsaero_is_built_from_its_settings_and_tracks_delivery(
    http_client: httpx.AsyncClient,
) -> None:
    provider = build_provider(
        settings(
            provider="smsaero",
            SMSAERO_EMAIL="owner@example.com",
            SMSAERO_API_KEY="key",
            SMSAERO_URL="http://127.0.0.1:9/v2",
        ),
        http_client,
    )

    assert isinstance(provider, SmsAeroProvider)
    assert delivery_tracker(provider) is provider
    await close_provider(provider)  # nothing of its own to close: the shared client is the app's


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"provider": "smsaero"},
            "SMS_SENDER_PROVIDER=smsaero needs SMSAERO_EMAIL and SMSAERO_API_KEY",
        ),
        (
            {"provider": "smsaero", "SMSAERO_EMAIL": "owner@example.com"},
            "SMS_SENDER_PROVIDER=smsaero needs SMSAERO_API_KEY",
        ),
        (
            {
                "provider": "smsaero",
                "SMSAERO_EMAIL": "o@e.com",
                "SMSAERO_API_KEY": "k",
                "SMSAERO_SIGN": " ",
            },
            "SMSAERO_SIGN must not be empty",
        ),
        (
            {
                "provider": "smsaero",
                "SMSAERO_EMAIL": "o@e.com",
                "SMSAERO_API_KEY": "k",
                "SMSAERO_URL": "gate.smsaero.ru/v2",
            },
            "SMSAERO_URL='gate.smsaero.ru/v2' is not an http(s) URL",
        ),
        ({"provider": "http"}, "SMS_SENDER_PROVIDER=http needs SMS_SENDER_HTTP_TOKEN"),
        (
            {"provider": "http", "http_token": "two words"},
            "SMS_SENDER_HTTP_TOKEN must be printable ASCII without spaces",
        ),
        (
            {"provider": "http", "http_token": "t", "http_url": "localhost:8080"},
            "SMS_SENDER_HTTP_URL='localhost:8080' is not an http(s) URL",
        ),
    ],
)
async def test_unusable_settings_fail_at_start_up_with_what_to_set(
    http_client: httpx.AsyncClient, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProviderConfigurationError) as failure:
        build_provider(settings(**values), http_client)

    assert str(failure.value).startswith(message)


async def test_unknown_provider_names_the_choices(http_client: httpx.AsyncClient) -> None:
    unknown = settings().model_copy(update={"provider": "carrier-pigeon"})

    with pytest.raises(ProviderConfigurationError) as failure:
        build_provider(unknown, http_client)

    assert str(failure.value) == (
        "SMS_SENDER_PROVIDER=carrier-pigeon is not a provider; "
        "choose one of console, fake, http, smsaero"
    )


async def test_shared_client_uses_the_configured_timeout_and_names_itself() -> None:
    async with create_http_client(settings(concurrency=7, http_timeout=3)) as client:
        assert client.timeout == httpx.Timeout(3)
        assert client.headers["user-agent"].startswith("sms-sender/")
