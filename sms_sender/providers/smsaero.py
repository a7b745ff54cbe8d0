"""SMS Aero (https://smsaero.ru), HTTP API v2, with delivery tracking.

Requests are JSON POSTs under a gateway's base URL with HTTP basic auth
``SMSAERO_EMAIL:SMSAERO_API_KEY``::

    POST /sms/send    {"number": "79001234567", "text": "Hello", "sign": "SMS Aero"}
    POST /sms/status  {"id": 539820423}

Every answer is an envelope ``{"success": bool, "data": {...} | null, "message": str | null}``;
``data`` of a message has its ``id`` (kept as provider_message_id) and a numeric ``status``.
Older accounts may still answer in the legacy shape ``{"result": "accepted" | "reject" |
"no credits", "reason": …, "id": …}``, which the official client also understands.

Gateways: SMS Aero serves the same API on several hosts (``SMSAERO_URL``, a comma-separated
list; by default the three of its official client, gate.smsaero.ru, .org and .net). A request
goes to the gateway that last worked; only when nothing could be sent to it (DNS, connect, TLS)
does it try the next. A read timeout never fails over: the first gateway may have the message.
Plain ``http://`` is refused at start-up unless loopback (the official client falls back to it
after a TLS error; we do not).

Reading a send's answer, by *when* it failed:

=====================================================  ==========================================
DNS, connect, TLS on every gateway                     transient (nothing left this process)
HTTP 402, "Insufficient funds", legacy "no credits"    no_funds: the engine pauses the mailing
HTTP 408, 429, 503 (``Retry-After`` honoured)          transient: SMS Aero said "not now"
other HTTP 4xx (401 bad credentials, 400 validation)   permanent, with the message and field errors
2xx ``success: true`` / legacy ``accepted``            accepted with ``data.id``
2xx ``success: false`` / legacy ``reject``             permanent, with the message or reason
read timeout, reset, HTTP 5xx, 2xx that is not such    unknown: SMS Aero may have the message
an envelope, an id over 128 characters
=====================================================  ==========================================

Text limits: the official client refuses texts outside 2 to 640 characters (``TEXT_LIMITS``);
the API refuses a mailing with such a text at creation instead of failing every report.

Validity period: ``sms/send`` in v2 takes no lifetime parameter, so ``valid_for`` is not passed
on; it still bounds how long a message may wait for a connection.

Delivery tracking (``sms/status``) has its own budget: the status session's small pool and at
most ``status_rate`` questions a second. A 429 raises :class:`TrackingThrottled` so the poller
slows down. Not idempotent: the API does not deduplicate on anything the caller chooses.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import structlog

from sms_sender.providers import _answers, _client
from sms_sender.providers._answers import answer_reason, body_excerpt, capped, excerpt
from sms_sender.providers.base import (
    DeliveryStatus,
    OutgoingMessage,
    SendResult,
    TextLimits,
    TrackingThrottled,
)

_log = structlog.get_logger(__name__)

TEXT_LIMITS = TextLimits(min_chars=2, max_chars=640)
# How long after sending SMS Aero's status is worth asking for: operators report within hours;
# a message still "in transit" after two days will not change any more.
STATUS_LIFETIME = timedelta(days=2)

TRY_LATER_STATUSES = frozenset({408, 429, 503})
NO_FUNDS_STATUS = 402
_NO_FUNDS_PHRASES = ("insufficient funds", "no credits", "not enough money")

# SMS Aero's message status codes. 0 queued, 3 handed to the operator, 4 waiting for the
# operator's report and 8 in moderation are all "still in transit", hence UNKNOWN.
DELIVERED_CODES = frozenset({1})
UNDELIVERED_CODES = frozenset({2, 6})  # 2 not delivered, 6 rejected


class SmsAeroProvider:
    """Sends through SMS Aero and asks it, message by message, whether each one arrived."""

    name = "smsaero"
    idempotent = False
    text_limits = TEXT_LIMITS
    status_lifetime = STATUS_LIFETIME

    def __init__(
        self,
        sessions: _client.GatewaySessions,
        *,
        email: str,
        api_key: str,
        sign: str,
        urls: Sequence[str],
        timeout: float,
        status_rate: float = 10.0,
    ) -> None:
        self._sessions = sessions
        self._sign = sign
        self._timeout = timeout
        self._base_urls = [url.rstrip("/") for url in urls]
        self._proxies = [_client.proxy_for(url) for url in urls]
        self._preferred = 0  # the gateway that last answered
        self._status_spacing = 1.0 / status_rate
        self._next_status_at = 0.0
        credentials = base64.b64encode(f"{email}:{api_key}".encode()).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        now = asyncio.get_running_loop().time()
        return await asyncio.gather(
            *(self._send_one(m, now + m.valid_for.total_seconds()) for m in batch)
        )

    async def delivery_status(
        self, provider_message_ids: Sequence[str]
    ) -> dict[str, DeliveryStatus]:
        """The status of each id SMS Aero could report on; ids it could not are left out.

        v2 has no batch form of ``sms/status``, so the ids are asked about one by one, paced to
        ``status_rate`` and over the status session's own connections.
        """
        statuses = await asyncio.gather(*(self._status_of(i) for i in provider_message_ids))
        return {
            message_id: status
            for message_id, status in zip(provider_message_ids, statuses, strict=True)
            if status is not None
        }

    async def _send_one(self, message: OutgoingMessage, write_before: float) -> SendResult:
        payload = {"number": message.phone, "text": message.text, "sign": self._sign}
        try:
            answer = await self._post(
                self._sessions.sends, "/sms/send", payload, write_before=write_before
            )
        except _client.TooLate as exc:
            return SendResult.expired(str(exc))
        except _client.NotSent as exc:
            return SendResult.transient(capped(str(exc)))
        except _client.AnswerLost as exc:
            return SendResult.unknown(capped(str(exc)))
        return classify_send_answer(answer)

    async def _status_of(self, message_id: str) -> DeliveryStatus | None:
        await self._pace_status()
        # SMS Aero's ids are numbers; one that is not is passed on as it is for SMS Aero to judge.
        wire_id = int(message_id) if message_id.isdigit() else message_id
        try:
            answer = await self._post(self._sessions.status, "/sms/status", {"id": wire_id})
        except (_client.NotSent, _client.AnswerLost) as exc:
            _log.warning(
                "smsaero status unavailable", provider_message_id=message_id, error=str(exc)
            )
            return None
        if answer.status == 429:
            raise TrackingThrottled(
                "SMS Aero answered 429 to a status question",
                retry_after=_answers.retry_after(answer.headers),
            )
        status = read_status_answer(answer.status, answer.body)
        if status is None:
            _log.warning(
                "smsaero status unavailable",
                provider_message_id=message_id,
                http_status=answer.status,
                answer=body_excerpt(answer.body),
            )
        return status

    async def _pace_status(self) -> None:
        """Space status questions ``1 / status_rate`` apart, across every caller."""
        loop = asyncio.get_running_loop()
        slot = max(loop.time(), self._next_status_at)
        self._next_status_at = slot + self._status_spacing
        if slot > loop.time():
            await asyncio.sleep(slot - loop.time())

    async def _post(
        self,
        session: aiohttp.ClientSession,
        path: str,
        payload: dict[str, Any],
        *,
        write_before: float | None = None,
    ) -> _client.GatewayAnswer:
        """POST to the preferred gateway; the next ones only while nothing could be sent."""
        body = orjson.dumps(payload)
        failures: list[str] = []
        count = len(self._base_urls)
        for step in range(count):
            index = (self._preferred + step) % count
            try:
                answer = await _client.post(
                    session,
                    self._base_urls[index] + path,
                    body,
                    self._headers,
                    timeout=self._timeout,
                    write_before=write_before,
                    proxy=self._proxies[index],
                )
            except _client.TooLate:
                raise
            except _client.NotSent as exc:
                failures.append(str(exc))
                continue
            self._preferred = index
            return answer
        raise _client.NotSent("; ".join(failures))


def classify_send_answer(answer: _client.GatewayAnswer) -> SendResult:
    """The result of one ``sms/send`` answer (see the table in the module docstring)."""
    status, body = answer.status, answer.body
    if status == NO_FUNDS_STATUS:
        return SendResult.no_funds(f"HTTP 402: {answer_reason(status, body)}")
    if status in TRY_LATER_STATUSES:
        return SendResult.transient(
            f"HTTP {status}: {answer_reason(status, body)}",
            retry_after=_answers.retry_after(answer.headers),
        )
    if 400 <= status < 500:
        return SendResult.permanent(f"HTTP {status}: {_failure_reason(status, body)}")
    if not 200 <= status < 300:
        return SendResult.unknown(f"HTTP {status}: {answer_reason(status, body)}")
    envelope = _answers.json_object(body)
    if envelope is not None and isinstance(envelope.get("result"), str):
        return _classify_legacy(envelope)
    success = envelope.get("success") if envelope is not None else None
    if envelope is None or not isinstance(success, bool):
        return SendResult.unknown(f"unparseable answer: {body_excerpt(body) or '<empty>'}")
    if not success:
        reason = _failure_reason(status, body)
        if _says_no_funds(reason):
            return SendResult.no_funds(reason)
        return SendResult.permanent(reason)
    # success: true is SMS Aero saying it took the message; sending again to learn an id that
    # is missing would risk a second SMS, so it is accepted without one.
    data = envelope.get("data")
    return _answers.accepted(data.get("id") if isinstance(data, dict) else None)


def _classify_legacy(answer: dict[str, Any]) -> SendResult:
    """``{"result": "accepted" | "reject" | "no credits", ...}``, the shape of older accounts."""
    result = answer["result"].strip().lower()
    reason = answer.get("reason")
    reason_text = excerpt(reason) if isinstance(reason, str) and reason.strip() else None
    if result == "accepted":
        return _answers.accepted(answer.get("id"))
    if result == "no credits":
        return SendResult.no_funds("no credits on the SMS Aero account")
    if result == "reject":
        return SendResult.permanent(f"rejected: {reason_text or 'no reason given'}")
    return SendResult.unknown(f"unparseable answer: result {excerpt(result)!r}")


def _says_no_funds(reason: str) -> bool:
    lowered = reason.lower()
    return any(phrase in lowered for phrase in _NO_FUNDS_PHRASES)


def read_status_answer(status: int, body: bytes) -> DeliveryStatus | None:
    """The delivery status in one ``sms/status`` answer; None if it carries none."""
    envelope = _answers.json_object(body) if 200 <= status < 300 else None
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


def _status_code(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _failure_reason(status: int, body: bytes) -> str:
    """SMS Aero's message, followed by the field errors a validation failure lists in data."""
    reason = answer_reason(status, body)
    envelope = _answers.json_object(body)
    fields = envelope.get("data") if envelope is not None else None
    if not isinstance(fields, dict) or not fields:
        return reason
    details = "; ".join(f"{field}: {_as_text(problems)}" for field, problems in fields.items())
    return excerpt(f"{reason} ({details})")


def _as_text(problems: object) -> str:
    if isinstance(problems, list):
        return ", ".join(str(problem) for problem in problems)
    return str(problems)
