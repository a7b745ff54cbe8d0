"""SMS Aero (https://smsaero.ru), HTTP API v2, with delivery tracking.

Requests are JSON POSTs under the base URL (``https://gate.smsaero.ru/v2`` by default,
``SMSAERO_URL`` to override) with HTTP basic auth ``SMSAERO_EMAIL:SMSAERO_API_KEY``::

    POST /sms/send    {"number": "79001234567", "text": "Hello", "sign": "SMS Aero"}
    POST /sms/status  {"id": 539820423}

Every answer is an envelope ``{"success": bool, "data": {...} | null, "message": str | null}``;
``data`` of a message has its ``id`` (kept as provider_message_id) and a numeric ``status``.

Reading a send's answer:

=====================================================  ==========================================
timeout, connection error, HTTP 5xx, 408, 429          transient
other HTTP 4xx (401 bad credentials, 400 validation)   permanent, with the message and field errors
2xx with ``success: true``                             accepted with ``data.id``
2xx with ``success: false``                            permanent, with the message
2xx that is not such an envelope                       transient "unparseable answer: ..."
=====================================================  ==========================================

Validity period: ``sms/send`` in v2 takes only the number(s), text, sign, an optional deferred
send time (``dateSend``) and a status callback URL; it has no lifetime parameter, so
``OutgoingMessage.valid_for`` is not passed on. The engine's check of end_at right before each
send is what keeps messages inside the mailing.

Not idempotent: the API does not deduplicate on anything the caller chooses.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from typing import Any

import httpx
import structlog

from sms_sender.providers.base import DeliveryStatus, OutgoingMessage, SendResult
from sms_sender.providers.http import (
    answer_reason,
    body_excerpt,
    excerpt,
    is_transient_status,
    json_object,
)

_log = structlog.get_logger(__name__)

DEFAULT_URL = "https://gate.smsaero.ru/v2"

# SMS Aero's message status codes. 0 queued, 3 handed to the operator, 4 waiting for the
# operator's report and 8 in moderation are all "still in transit", hence UNKNOWN.
DELIVERED_CODES = frozenset({1})
UNDELIVERED_CODES = frozenset({2, 6})  # 2 not delivered, 6 rejected


class SmsAeroProvider:
    """Sends through SMS Aero and asks it, message by message, whether each one arrived."""

    name = "smsaero"
    idempotent = False

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        email: str,
        api_key: str,
        sign: str,
        url: str = DEFAULT_URL,
        timeout: float,
    ) -> None:
        self._client = client
        self._sign = sign
        self._timeout = timeout
        base_url = url.rstrip("/")
        self._send_url = f"{base_url}/sms/send"
        self._status_url = f"{base_url}/sms/status"
        credentials = base64.b64encode(f"{email}:{api_key}".encode()).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        return await asyncio.gather(*(self._send_one(message) for message in batch))

    async def delivery_status(
        self, provider_message_ids: Sequence[str]
    ) -> dict[str, DeliveryStatus]:
        """The status of each id SMS Aero could report on; ids it could not are left out.

        v2 has no batch form of ``sms/status``, so the ids are asked about concurrently.
        """
        statuses = await asyncio.gather(*(self._status_of(i) for i in provider_message_ids))
        return {
            message_id: status
            for message_id, status in zip(provider_message_ids, statuses, strict=True)
            if status is not None
        }

    async def _send_one(self, message: OutgoingMessage) -> SendResult:
        payload = {"number": message.phone, "text": message.text, "sign": self._sign}
        try:
            response = await self._post(self._send_url, payload)
        except httpx.RequestError as exc:
            return request_failure(exc, self._timeout)
        return classify_send_answer(response.status_code, response.content)

    async def _status_of(self, message_id: str) -> DeliveryStatus | None:
        # SMS Aero's ids are numbers; one that is not is passed on as it is for SMS Aero to judge.
        wire_id = int(message_id) if message_id.isdigit() else message_id
        try:
            response = await self._post(self._status_url, {"id": wire_id})
        except httpx.RequestError as exc:
            _log.warning(
                "smsaero status unavailable",
                provider_message_id=message_id,
                error=request_failure(exc, self._timeout).error,
            )
            return None
        status = read_status_answer(response.status_code, response.content)
        if status is None:
            _log.warning(
                "smsaero status unavailable",
                provider_message_id=message_id,
                http_status=response.status_code,
                answer=body_excerpt(response.content),
            )
        return status

    async def _post(self, url: str, payload: dict[str, Any]) -> httpx.Response:
        return await self._client.post(
            url,
            content=json.dumps(payload, ensure_ascii=False).encode(),
            headers=self._headers,
            timeout=self._timeout,
        )


def classify_send_answer(status: int, body: bytes) -> SendResult:
    """The result of one ``sms/send`` answer (see the table in the module docstring)."""
    if is_transient_status(status):
        return SendResult.transient(f"HTTP {status}: {answer_reason(status, body)}")
    if 400 <= status < 500:
        return SendResult.permanent(f"HTTP {status}: {_failure_reason(status, body)}")
    if not 200 <= status < 300:
        return SendResult.transient(f"unexpected answer: HTTP {status}")
    envelope = json_object(body)
    success = envelope.get("success") if envelope is not None else None
    if envelope is None or not isinstance(success, bool):
        return SendResult.transient(f"unparseable answer: {body_excerpt(body) or '<empty>'}")
    if not success:
        return SendResult.permanent(_failure_reason(status, body))
    # success: true is SMS Aero saying it took the message; sending again to learn an id that
    # is missing would risk a second SMS, so it is accepted without one.
    return SendResult.accepted(_message_id(envelope.get("data")))


def read_status_answer(status: int, body: bytes) -> DeliveryStatus | None:
    """The delivery status in one ``sms/status`` answer; None if it carries none."""
    envelope = json_object(body) if 200 <= status < 300 else None
    data = envelope.get("data") if envelope is not None else None
    if envelope is None or envelope.get("success") is not True or not isinstance(data, dict):
        return None
    code = _status_code(data.get("status"))
    if code is None:
        return None
    if code in DELIVERED_CODES:
        return DeliveryStatus.DELIVERED
    if code in UNDELIVERED_CODES:
        return DeliveryStatus.UNDELIVERED
    return DeliveryStatus.UNKNOWN


def request_failure(exc: httpx.RequestError, timeout: float) -> SendResult:
    """A request that got no usable answer: always transient."""
    if isinstance(exc, httpx.TimeoutException):
        return SendResult.transient(f"timeout: no answer within {timeout:g}s")
    if isinstance(exc, httpx.DecodingError):
        return SendResult.transient(f"unparseable answer: {exc}")
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return SendResult.transient(f"connection error: {detail}")


def _status_code(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _failure_reason(status: int, body: bytes) -> str:
    """SMS Aero's message, followed by the field errors a validation failure lists in data."""
    reason = answer_reason(status, body)
    envelope = json_object(body)
    fields = envelope.get("data") if envelope is not None else None
    if not isinstance(fields, dict) or not fields:
        return reason
    details = "; ".join(f"{field}: {_as_text(problems)}" for field, problems in fields.items())
    return excerpt(f"{reason} ({details})")


def _as_text(problems: object) -> str:
    if isinstance(problems, list):
        return ", ".join(str(problem) for problem in problems)
    return str(problems)


def _message_id(data: object) -> str | None:
    message_id = data.get("id") if isinstance(data, dict) else None
    if isinstance(message_id, bool) or not isinstance(message_id, int | str):
        return None
    return str(message_id) or None
