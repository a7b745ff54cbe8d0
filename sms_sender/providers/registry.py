"""Which provider ``SMS_SENDER_PROVIDER`` names, built from the settings and checked at start-up.

A plain dict from name to factory: adding a gateway is one function and one entry. A factory
refuses settings that could only fail later, message by message (SMS Aero without credentials,
an HTTP gateway without a token, a gateway URL that would send credentials in clear), so a
misconfigured service stops at start-up with a sentence that names the variable to set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import cast

from sms_sender.config import ProviderName, Settings
from sms_sender.providers._client import GatewaySessions, create_session
from sms_sender.providers.base import DeliveryTracking, Provider, TextLimits
from sms_sender.providers.console import ConsoleProvider
from sms_sender.providers.fake import FakeProvider
from sms_sender.providers.gateway_url import gateway_url_problem
from sms_sender.providers.http import HttpProvider
from sms_sender.providers.smsaero import SmsAeroProvider

ProviderFactory = Callable[[Settings, GatewaySessions], Provider]

# Status questions get this many connections of their own, apart from the sends'.
STATUS_CONNECTIONS = 4


class ProviderConfigurationError(ValueError):
    """The settings cannot make the chosen provider work; raised once, at start-up."""


def build_provider(settings: Settings, sessions: GatewaySessions) -> Provider:
    """The provider ``settings.provider`` names, sending through the process's ``sessions``."""
    factory = PROVIDERS.get(settings.provider)
    if factory is None:
        choices = ", ".join(sorted(PROVIDERS))
        raise ProviderConfigurationError(
            f"SMS_SENDER_PROVIDER={settings.provider!s} is not a provider; choose one of {choices}"
        )
    return factory(settings, sessions)


@asynccontextmanager
async def gateway_sessions(settings: Settings) -> AsyncIterator[GatewaySessions]:
    """The process's gateway sessions, closed when the block ends.

    The send pool holds as many connections as the worker has sends in flight, so a full batch
    never waits for one; status polling has ``STATUS_CONNECTIONS`` of its own.
    """
    sessions = GatewaySessions(
        sends=create_session(max_connections=settings.concurrency),
        status=create_session(max_connections=STATUS_CONNECTIONS),
    )
    try:
        yield sessions
    finally:
        await sessions.aclose()


def text_limits(settings: Settings) -> TextLimits:
    """What texts the configured provider can send (the API checks a mailing's text with it)."""
    return TEXT_LIMITS.get(settings.provider, ConsoleProvider.text_limits)


def delivery_tracker(provider: Provider) -> DeliveryTracking | None:
    """The provider as a DeliveryTracking if it can report delivery, else None."""
    if callable(getattr(provider, "delivery_status", None)):
        return cast(DeliveryTracking, provider)
    return None


def smsaero_urls(settings: Settings) -> list[str]:
    """The gateways ``SMSAERO_URL`` lists, in order."""
    return [url.strip() for url in settings.smsaero_url.split(",") if url.strip()]


def _console(settings: Settings, _sessions: GatewaySessions) -> Provider:
    return ConsoleProvider(messages=settings.log_messages)


def _fake(_settings: Settings, _sessions: GatewaySessions) -> Provider:
    return FakeProvider()


def _http(settings: Settings, sessions: GatewaySessions) -> Provider:
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
    return HttpProvider(
        sessions.sends,
        url=settings.http_url,
        token=token,
        timeout=settings.http_timeout,
        idempotent=settings.http_idempotent,
    )


def _smsaero(settings: Settings, sessions: GatewaySessions) -> Provider:
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
    urls = smsaero_urls(settings)
    if not urls:
        raise ProviderConfigurationError(
            "SMSAERO_URL must list at least one gateway, e.g. https://gate.smsaero.ru/v2"
        )
    for url in urls:
        _require_http_url("SMSAERO_URL", url, settings)
    return SmsAeroProvider(
        sessions,
        email=settings.smsaero_email,
        api_key=api_key,
        sign=settings.smsaero_sign,
        urls=urls,
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

TEXT_LIMITS: dict[str, TextLimits] = {
    ProviderName.CONSOLE: ConsoleProvider.text_limits,
    ProviderName.HTTP: HttpProvider.text_limits,
    ProviderName.SMSAERO: SmsAeroProvider.text_limits,
    ProviderName.FAKE: FakeProvider.text_limits,
}
