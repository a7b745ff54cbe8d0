"""The one rule for a gateway URL the service sends credentials to (HTTP gateway, SMS Aero).

It must be http(s) with a host; plain ``http://`` is refused unless the host is loopback (a
gateway or tunnel on this machine) or the operator opted in with
``SMS_SENDER_ALLOW_INSECURE_GATEWAY=true``, because the bearer token or API key would cross the
network in clear. Checked once, at start-up, by the provider registry.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

INSECURE_OPT_IN = "SMS_SENDER_ALLOW_INSECURE_GATEWAY"


def gateway_url_problem(variable: str, url: str, *, allow_insecure: bool) -> str | None:
    """Why ``url`` (read from ``variable``) may not be used, or None when it may."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        hostname = None
    if hostname is None or parts.scheme not in ("http", "https"):
        return f"{variable}={url!r} is not an http(s) URL, e.g. https://gateway.example/api"
    if parts.scheme == "http" and not allow_insecure and not is_loopback(hostname):
        return (
            f"{variable}={url!r} would send credentials unencrypted over the network; "
            f"use https://, or set {INSECURE_OPT_IN}=true if the network is trusted"
        )
    return None


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and for addresses in 127.0.0.0/8 or ::1."""
    if hostname.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:  # a name other than localhost: it may resolve anywhere
        return False
