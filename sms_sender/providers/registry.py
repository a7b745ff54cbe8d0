"""Which provider ``SMS_SENDER_PROVIDER`` names, built from the settings and checked at start-up.

A plain dict from name to factory: adding a gateway is one function and one entry. A factory
refuses settings that could only fail later, message by message (SMS Aero without credentials,
an HTTP gateway without a token), so a misconfigured service stops at start-up with a sentence
that names the variable to set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import httpx

from sms_sender import __version__
from sms_sender.config import ProviderName, Settings
from sms_sender.providers.base import DeliveryTracking, Provider
from sms_sender.providers.console import ConsoleProvider
from sms_sender.providers.fake import FakeProvider
from sms_sender.providers.gateway_url import gateway_url_problem
from sms_sender.providers.http import HttpProvider
from sms_sender.providers.smsaero import SmsAeroProvider

ProviderFactory = Callable[[Settings, httpx.AsyncClient], Provider]


class ProviderConfigurationError(ValueError):
    """The settings cannot make the chosen provider work; raised once, at start-up."""


def build_provider(settings: Settings, http_client: httpx.AsyncClient) -> Provider:
    """The provider ``settings.provider`` names; ``close_provider`` it when the service stops.

    SMS Aero sends through the shared ``http_client``; the HTTP gateway keeps its own pool of
    connections (see ``_keepalive``), which ``close_provider`` closes.
    """
    factory = PROVIDERS.get(settings.provider)
    if factory is None:
        choices = ", ".join(sorted(PROVIDERS))
        raise ProviderConfigurationError(
            f"SMS_SENDER_PROVIDER={settings.provider!s} is not a provider; choose one of {choices}"
        )
    return factory(settings, http_client)


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    """The pooled keep-alive client the application owns and lends to providers; close it at exit.

    The pool holds as many connections as the worker has sends in flight, so a full batch
    never waits for a connection.
    """
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    return httpx.AsyncClient(
        limits=limits,
        timeout=settings.http_timeout,
        headers={"User-Agent": f"sms-sender/{__version__}"},
    )


async def close_provider(provider: Provider) -> None:
    """Release what a provider holds beyond the shared client (the HTTP gateway's connections)."""
    aclose = getattr(provider, "aclose", None)
    if callable(aclose):
        await aclose()


def delivery_tracker(provider: Provider) -> DeliveryTracking | None:
    """The provider as a DeliveryTracking if it can report delivery, else None."""
    if callable(getattr(provider, "delivery_status", None)):
        return cast(DeliveryTracking, provider)
    return None


def _console(settings: Settings, _http_client: httpx.AsyncClient) -> Provider:
    return ConsoleProvider(messages=settings.log_messages)


def _fake(_settings: Settings, _http_client: httpx.AsyncClient) -> Provider:
    return FakeProvider()


def _http(settings: Settings, http_client: httpx.AsyncClient) -> Provider:
    _require_http_url("SMS_SENDER_HTTP_URL", settings.http_url, settings)
    token = settings.http_token.get_secret_value()
    if not token:
        raise ProviderConfigurationError(
            "SMS_SENDER_PROVIDER=http needs SMS_SENDER_HTTP_TOKEN, the gateway's bearer token"
        )
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise ProviderConfigurationError(
            "SMS_SENDER_HTTP_TOKEN must be printable ASCII without spaces (a bearer token)"
        )
    # The HTTP gateway keeps its own connections (see providers/_keepalive.py): it is the
    # high-rate path, and httpx would cost more CPU per message than the rest of the worker.
    return HttpProvider(
        url=settings.http_url,
        token=token,
        timeout=settings.http_timeout,
        max_connections=settings.concurrency,
    )


def _smsaero(settings: Settings, http_client: httpx.AsyncClient) -> Provider:
    api_key = settings.smsaero_api_key.get_secret_value()
    missing = [
        name
        for name, value in (("SMSAERO_EMAIL", settings.smsaero_email), ("SMSAERO_API_KEY", api_key))
        if not value.strip()
    ]
    if missing:
        raise ProviderConfigurationError(
            f"SMS_SENDER_PROVIDER=smsaero needs {' and '.join(missing)} "
            "(your SMS Aero login and the API key from its account settings)"
        )
    if not settings.smsaero_sign.strip():
        raise ProviderConfigurationError("SMSAERO_SIGN must not be empty (the sender name)")
    _require_http_url("SMSAERO_URL", settings.smsaero_url, settings)
    return SmsAeroProvider(
        http_client,
        email=settings.smsaero_email,
        api_key=api_key,
        sign=settings.smsaero_sign,
        url=settings.smsaero_url,
        timeout=settings.http_timeout,
    )


def _require_http_url(variable: str, url: str, settings: Settings) -> None:
    problem = gateway_url_problem(variable, url, allow_insecure=settings.allow_insecure_gateway)
    if problem is not None:
        raise ProviderConfigurationError(problem)


PROVIDERS: dict[str, ProviderFactory] = {
    ProviderName.CONSOLE: _console,
    ProviderName.HTTP: _http,
    ProviderName.SMSAERO: _smsaero,
    ProviderName.FAKE: _fake,
}
