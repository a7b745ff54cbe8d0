"""A gateway reached over plain http:// would get its credentials in clear: refused at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sms_sender.config import Settings
from sms_sender.providers import (
    GatewaySessions,
    ProviderConfigurationError,
    build_provider,
    gateway_sessions,
)
from sms_sender.providers.gateway_url import gateway_url_problem

HTTP = {"provider": "http", "http_token": "t0ken"}
AERO = {"provider": "smsaero", "SMSAERO_EMAIL": "o@example.com", "SMSAERO_API_KEY": "k"}


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMS_SENDER_ALLOW_INSECURE_GATEWAY", "SMS_SENDER_HTTP_URL", "SMSAERO_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def sessions() -> AsyncIterator[GatewaySessions]:
    async with gateway_sessions(Settings()) as running:
        yield running


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        (HTTP | {"http_url": "http://gateway.example/api"}, "SMS_SENDER_HTTP_URL"),
        (HTTP | {"http_url": "http://10.0.0.7:8080"}, "SMS_SENDER_HTTP_URL"),
        (AERO | {"SMSAERO_URL": "http://gate.smsaero.ru/v2"}, "SMSAERO_URL"),
        # Anywhere in SMS Aero's list of gateways: a fallback must not be plain http either.
        (
            AERO | {"SMSAERO_URL": "https://gate.smsaero.ru/v2, http://gate.smsaero.org/v2"},
            "SMSAERO_URL",
        ),
    ],
)
async def test_plain_http_to_another_host_is_refused_naming_the_variable_and_the_way_out(
    sessions: GatewaySessions, values: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ProviderConfigurationError) as refused:
        build_provider(Settings(**values), sessions)

    message = str(refused.value)
    assert message.startswith(f"{variable}=")
    assert "unencrypted" in message
    assert "SMS_SENDER_ALLOW_INSECURE_GATEWAY=true" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://gateway.example/api",
        "http://127.0.0.1:8080",
        "http://127.1.2.3/api",
        "http://localhost:8080",
        "http://[::1]:8080",
    ],
)
async def test_https_and_loopback_are_accepted(sessions: GatewaySessions, url: str) -> None:
    build_provider(Settings(**HTTP, http_url=url), sessions)


async def test_the_operator_may_opt_in_to_plain_http(
    sessions: GatewaySessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMS_SENDER_ALLOW_INSECURE_GATEWAY", "true")
    build_provider(Settings(**AERO, SMSAERO_URL="http://gate.smsaero.ru/v2"), sessions)


@pytest.mark.parametrize("url", ["http://localhost.evil.example", "http://127.0.0.1.nip.io"])
def test_a_name_that_only_looks_local_is_not_loopback(url: str) -> None:
    assert gateway_url_problem("X", url, allow_insecure=False) is not None
