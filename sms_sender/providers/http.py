"""A generic JSON gateway: ``POST {url}/send/{report_id}`` with a bearer token.

This is the "probe" API that similar services expose::

    POST /send/17                          Authorization: Bearer <token>
    {"id": 17, "phone": 79001234567, "text": "Hello"}

    200 {"code": 0, "message": "OK"}       accepted (any non-zero code is a rejection)

How an answer is read, by *when* it failed (see the contract in ``base``):

=====================================================  ==========================================
DNS, connect, TLS, no pooled connection in time        transient (nothing left this process)
end_at passed while waiting for a connection           expired (nothing left this process)
HTTP 408, 429, 503 (``Retry-After`` honoured)          transient: the gateway said "not now"
other HTTP 4xx                                         permanent, with the body's reason
2xx with ``{"code": 0}``                               accepted; ``message_id`` or ``id`` if given
2xx with another code                                  permanent, with the gateway's message
read timeout, reset, HTTP 500/502/504 and other 5xx,   unknown: the gateway may have the message
2xx without JSON or ``code``, an id over 128
characters, an answer over 64 KiB, 1xx/3xx
=====================================================  ==========================================

The report id is in the path, so a gateway can de-duplicate on it. Only the operator can know
that it does: ``SMS_SENDER_HTTP_IDEMPOTENT=true`` makes this provider ``idempotent``, and the
engine then sends a message with an unknown outcome again instead of marking it ``unknown``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from sms_sender.providers import _answers, _client
from sms_sender.providers._answers import answer_reason, body_excerpt, capped
from sms_sender.providers.base import NO_TEXT_LIMITS, OutgoingMessage, SendResult

# "Not now": the gateway did not take the message and says so.
TRY_LATER_STATUSES = frozenset({408, 429, 503})


class HttpProvider:
    """Sends each message of a batch concurrently through the process's shared session."""

    name = "http"
    text_limits = NO_TEXT_LIMITS

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        url: str,
        token: str,
        timeout: float,
        idempotent: bool = False,
    ) -> None:
        self._session = session
        self._base_url = url.rstrip("/")
        self._proxy = _client.proxy_for(url)
        self._timeout = timeout
        self.idempotent = idempotent
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        # The engine bounds the batch size, so gathering the whole batch is its concurrency cap.
        now = asyncio.get_running_loop().time()
        sends = [
            self._send_one(message, write_before=now + message.valid_for.total_seconds())
            for message in batch
        ]
        if len(sends) == 1:  # the engine's usual call: no task to gather, and no wait for one
            return [await sends[0]]
        return await asyncio.gather(*sends)

    async def _send_one(self, message: OutgoingMessage, *, write_before: float) -> SendResult:
        body = {"id": message.report_id, "phone": int(message.phone), "text": message.text}
        try:
            answer = await _client.post(
                self._session,
                f"{self._base_url}/send/{message.report_id}",
                orjson.dumps(body),  # UTF-8, as json.dumps(ensure_ascii=False) would be
                self._headers,
                timeout=self._timeout,
                write_before=write_before,
                proxy=self._proxy,
            )
        except _client.TooLate as exc:
            return SendResult.expired(str(exc))
        except _client.NotSent as exc:
            return SendResult.transient(capped(str(exc)))
        except _client.AnswerLost as exc:
            return SendResult.unknown(capped(str(exc)))
        return classify_answer(answer)


def classify_answer(answer: _client.GatewayAnswer) -> SendResult:
    """The result of one probe-API answer (see the table in the module docstring)."""
    status, body = answer.status, answer.body
    if status in TRY_LATER_STATUSES:
        return SendResult.transient(
            f"HTTP {status}: {answer_reason(status, body)}",
            retry_after=_answers.retry_after(answer.headers),
        )
    if 400 <= status < 500:
        return SendResult.permanent(f"HTTP {status}: {answer_reason(status, body)}")
    if not 200 <= status < 300:
        return SendResult.unknown(f"HTTP {status}: {answer_reason(status, body)}")
    parsed = _answers.json_object(body)
    code = _result_code(parsed)
    if parsed is None or code is None:
        return SendResult.unknown(f"unparseable answer: {body_excerpt(body) or '<empty>'}")
    if code != 0:
        return SendResult.permanent(f"rejected with code {code}: {answer_reason(status, body)}")
    return _answers.accepted(_message_id(parsed))


def _result_code(answer: dict[str, Any] | None) -> int | None:
    code = answer.get("code") if answer is not None else None
    if isinstance(code, bool):  # JSON false is not the number 0
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        return int(code)
    return None


def _message_id(answer: dict[str, Any]) -> object:
    for key in ("message_id", "id"):
        value = answer.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return value
    return None
