"""build_provider picks the provider SMS_SENDER_PROVIDER names and refuses unusable settings."""

from __future__ import annotations

from typing import Any

import pytest

from sms_sender.config import Settings
from sms_sender.providers import (
    ConsoleProvider,
    FakeProvider,
    GatewaySessions,
    HttpProvider,
    ProviderConfigurationError,
    SmsAeroProvider,
    build_provider,
    delivery_tracker,
    gateway_sessions,
    text_limits,
)
from sms_sender.providers._client import proxy_for


@pytest.fixture(autouse=True)
def _no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment; these tests must see only what they pass."""
    for name in (
        "SMS_SENDER_PROVIDER",
        "SMS_SENDER_HTTP_URL",
        "SMS_SENDER_HTTP_TOKEN",
        "SMS_SENDER_HTTP_IDEMPOTENT",
        "SMSAERO_EMAIL",
        "SMSAERO_API_KEY",
        "SMSAERO_SIGN",
        "SMSAERO_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def settings(**values: Any) -> Settings:
    return Settings(**values)


async def test_console_is_the_default(sessions: GatewaySessions) -> None:
    assert isinstance(build_provider(settings(), sessions), ConsoleProvider)


async def test_fake_can_be_chosen(sessions: GatewaySessions) -> None:
    assert isinstance(build_provider(settings(provider="fake"), sessions), FakeProvider)


async def test_http_is_built_from_its_settings(sessions: GatewaySessions) -> None:
    provider = build_provider(
        settings(provider="http", http_url="http://127.0.0.1:9/api", http_token="t0ken"),
        sessions,
    )
    assert isinstance(provider, HttpProvider)
    assert delivery_tracker(provider) is None
    assert provider.idempotent is False


async def test_smsaero_is_built_from_its_settings_and_tracks_delivery(
    sessions: GatewaySessions,
) -> None:
    provider = build_provider(
        settings(
            provider="smsaero",
            SMSAERO_EMAIL="owner@example.com",
            SMSAERO_API_KEY="key",
            SMSAERO_URL="http://127.0.0.1:9/v2",
        ),
        sessions,
    )

    assert isinstance(provider, SmsAeroProvider)
    assert delivery_tracker(provider) is provider


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
    sessions: GatewaySessions, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProviderConfigurationError) as failure:
        build_provider(settings(**values), sessions)

    assert str(failure.value).startswith(message)


async def test_unknown_provider_names_the_choices(sessions: GatewaySessions) -> None:
    unknown = settings().model_copy(update={"provider": "carrier-pigeon"})

    with pytest.raises(ProviderConfigurationError) as failure:
        build_provider(unknown, sessions)

    assert str(failure.value) == (
        "SMS_SENDER_PROVIDER=carrier-pigeon is not a provider; "
        "choose one of console, fake, http, smsaero"
    )


async def test_the_operator_can_vouch_that_the_http_gateway_deduplicates(
    sessions: GatewaySessions,
) -> None:
    provider = build_provider(
        settings(provider="http", http_token="t0ken", http_idempotent=True), sessions
    )

    assert provider.idempotent is True


def test_smsaero_defaults_to_the_three_official_gateways() -> None:
    assert settings().smsaero_url.split(",") == [
        "https://gate.smsaero.ru/v2",
        "https://gate.smsaero.org/v2",
        "https://gate.smsaero.net/v2",
    ]


def test_text_limits_follow_the_configured_provider() -> None:
    assert text_limits(settings(provider="smsaero")).problem("x") == (
        "the text has 1 characters; the gateway takes 2 to 640"
    )
    assert text_limits(settings(provider="http")).problem("x" * 5000) is None


async def test_gateway_sessions_keep_status_connections_apart() -> None:
    async with gateway_sessions(settings(concurrency=7)) as sessions:
        assert sessions.sends.connector is not None
        assert sessions.status.connector is not None
        assert sessions.sends.connector.limit == 7
        assert sessions.status.connector.limit < 7
        assert sessions.sends.headers["User-Agent"].startswith("sms-sender/")

    assert sessions.sends.closed
    assert sessions.status.closed


def test_proxies_come_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")

    assert proxy_for("https://gate.smsaero.ru/v2") == "http://proxy.internal:3128"
    assert proxy_for("http://127.0.0.1:8080") is None
