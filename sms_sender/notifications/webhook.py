"""Alerts as a JSON POST to ``SMS_SENDER_ALERT_WEBHOOK_URL`` (chat bridges, incident tools)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx


class WebhookError(Exception):
    """The webhook did not answer 2xx; ``str()`` says what happened instead."""


async def post_alert(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
    """POST ``body`` as JSON; any answer but 2xx, and any failure to get one, is WebhookError."""
    host = urlsplit(url).hostname  # not the whole URL: its path is often the secret
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as error:
        raise WebhookError(f"webhook at {host}: {error!r}") from error
    if not response.is_success:
        raise WebhookError(f"webhook at {host} answered {response.status_code}")
