"""The OIDC settings, checked once at start-up: a sentence naming the variable if unusable."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from sms_sender.auth.oidc_access import AccessPolicy, OidcConfigurationError
from sms_sender.config import Settings


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    provider_name: str
    public_url: str
    access: AccessPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The checked OIDC settings; None when OIDC is off. OidcConfigurationError if unusable."""
        issuer = settings.oidc_issuer.strip().rstrip("/")
        if not issuer:
            if settings.oidc_client_id:
                raise OidcConfigurationError(
                    "SMS_SENDER_OIDC_CLIENT_ID is set but SMS_SENDER_OIDC_ISSUER is not; set the "
                    "issuer URL, e.g. https://keycloak.example/realms/main"
                )
            return None
        _check_issuer(issuer)
        if not settings.oidc_client_id.strip():
            raise OidcConfigurationError(
                "SMS_SENDER_OIDC_CLIENT_ID is required with SMS_SENDER_OIDC_ISSUER: the client id "
                "this service is registered under at the provider"
            )
        scopes = tuple(settings.oidc_scopes.split())
        if "openid" not in scopes:
            raise OidcConfigurationError(
                f"SMS_SENDER_OIDC_SCOPES={settings.oidc_scopes!r} must include openid"
            )
        public_url = settings.public_url.strip().rstrip("/")  # checked by Settings
        return cls(
            issuer=issuer,
            client_id=settings.oidc_client_id.strip(),
            client_secret=settings.oidc_client_secret.get_secret_value(),
            scopes=scopes,
            provider_name=settings.oidc_provider_name.strip() or "OpenID Connect",
            public_url=public_url,
            access=AccessPolicy.from_settings(settings),
        )


def _check_issuer(issuer: str) -> None:
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and _is_loopback(host):
        return
    raise OidcConfigurationError(
        f"SMS_SENDER_OIDC_ISSUER={issuer!r} must be an https:// URL (plain http:// only on "
        "this machine), e.g. https://accounts.google.com"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
