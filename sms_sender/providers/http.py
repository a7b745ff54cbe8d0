"""A generic JSON gateway: ``POST {url}/send/{report_id}`` with a bearer token.

This is the "probe" API that similar services expose::

    POST /send/17                          Authorization: Bearer <token>
    {"id": 17, "phone": 79001234567, "text": "Hello"}

    200 {"code": 0, "message": "OK"}       accepted (any non-zero code is a rejection)

How an answer is read (the engine retries transient results and fails permanent ones):

=====================================================  ==========================================
timeout, connection error, HTTP 5xx, 408, 429          transient
other HTTP 4xx                                         permanent, with the body's reason
2xx with ``{"code": 0}``                               accepted; ``message_id`` or ``id`` if given
2xx with another code                                  permanent, with the gateway's message
2xx that is not JSON, or has no ``code``               transient "unparseable answer: ..."
=====================================================  ==========================================

Not idempotent: the API promises no deduplication on the report id, so a send whose answer was
lost in a crash is never repeated blindly. The messages of a batch are sent concurrently over a
pool of keep-alive connections (see ``_keepalive`` for why not httpx). The answer-reading
helpers at the bottom are shared with the SMS Aero provider.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import orjson

from sms_sender.providers._keepalive import ExchangeFailed, KeepAlivePool, TooLate
from sms_sender.providers.base import OutgoingMessage, SendResult

# Where JSON error bodies usually put a sentence a person can read.
_REASON_KEYS = ("message", "error", "detail", "reason", "description")
_EXCERPT_CHARS = 200


class HttpProvider:
    """Sends each message of a batch concurrently; ``aclose()`` when the service stops."""

    name = "http"
    idempotent = False

    def __init__(self, *, url: str, token: str, timeout: float, max_connections: int = 100) -> None:
        self._pool = KeepAlivePool(url, timeout=timeout, max_connections=max_connections)
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

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def _send_one(self, message: OutgoingMessage, *, write_before: float) -> SendResult:
        body = {"id": message.report_id, "phone": int(message.phone), "text": message.text}
        try:
            answer = await self._pool.post(
                f"/send/{message.report_id}",
                orjson.dumps(body),  # UTF-8, as json.dumps(ensure_ascii=False) would be
                self._headers,
                write_before=write_before,
            )
        except TooLate:
            return SendResult.expired("end_at passed while waiting for a gateway connection")
        except ExchangeFailed as exc:
            return SendResult.transient(str(exc))
        return classify_answer(answer.status, answer.body)


def classify_answer(status: int, body: bytes) -> SendResult:
    """The result of one probe-API answer (see the table in the module docstring)."""
    if is_transient_status(status):
        return SendResult.transient(f"HTTP {status}: {answer_reason(status, body)}")
    if 400 <= status < 500:
        return SendResult.permanent(f"HTTP {status}: {answer_reason(status, body)}")
    if not 200 <= status < 300:
        return SendResult.transient(f"unexpected answer: HTTP {status}")
    answer = json_object(body)
    code = _result_code(answer)
    if answer is None or code is None:
        return SendResult.transient(f"unparseable answer: {body_excerpt(body) or '<empty>'}")
    if code != 0:
        return SendResult.permanent(f"rejected with code {code}: {answer_reason(status, body)}")
    return SendResult.accepted(_message_id(answer))


def _result_code(answer: dict[str, Any] | None) -> int | None:
    code = answer.get("code") if answer is not None else None
    if isinstance(code, bool):  # JSON false is not the number 0
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        return int(code)
    return None


def _message_id(answer: dict[str, Any]) -> str | None:
    for key in ("message_id", "id"):
        value = answer.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def is_transient_status(status: int) -> bool:
    """5xx, 408 Request Timeout and 429 Too Many Requests may succeed if asked again later."""
    return status >= 500 or status in (408, 429)


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None if it is anything else."""
    try:
        answer = json.loads(body)
    except ValueError:  # not JSON, or not valid text
        return None
    return answer if isinstance(answer, dict) else None


def answer_reason(status: int, body: bytes) -> str:
    """The most readable explanation an error answer carries."""
    answer = json_object(body)
    if answer is not None:
        for key in _REASON_KEYS:
            value = answer.get(key)
            if isinstance(value, str) and value.strip():
                return excerpt(value)
    return body_excerpt(body) or _status_phrase(status)


def body_excerpt(body: bytes) -> str:
    """The start of the body on one line, short enough for a report's error column."""
    return excerpt(body[: _EXCERPT_CHARS * 4].decode("utf-8", errors="replace"))


def excerpt(text: str) -> str:
    one_line = " ".join(text.split())
    if len(one_line) <= _EXCERPT_CHARS:
        return one_line
    return one_line[: _EXCERPT_CHARS - 1] + "…"


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "no reason given"
