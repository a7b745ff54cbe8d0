"""A fake SMS Aero v2 API: basic auth, ``sms/send`` and ``sms/status``, its envelopes and errors.

In a test::

    async with FakeSmsAero(email="user@example.com", api_key="key") as aero:
        settings = Settings(provider="smsaero", SMSAERO_URL=aero.url, ...)   # aero.url ends in /v2
        aero.script("79000000001", AeroAnswer.RATE_LIMIT)    # the next send to it gets a 429
        ...
        aero.set_status(message_id, 1)                       # SMS Aero now says "delivered"

As a process: ``python -m tests.fakes.smsaero --port 0 --email E --api-key K [--record FILE]``
prints ``smsaero listening on http://127.0.0.1:PORT`` (add ``/v2`` for SMSAERO_URL) and appends
``<id> <number>`` per accepted message to the record file; ``GET /v2/stats`` (with the same
credentials) answers ``{"sends_by_number": {number: sends received}}``.

Answers, in order: 401 for missing or wrong credentials, 404 for an unknown path, 400 with
per-field errors for a bad number, a text outside 2 to 640 characters or an empty sign, then
the scripted ``AeroAnswer`` for the number, else ``default_answer``. Every envelope is
``{"success": bool, "data": ..., "message": str | null}``, except the legacy shapes
(``{"result": "no credits"}``, ``{"result": "reject", "reason": ...}``) older accounts still
get. A new message has status 0 ("queue") until ``set_status`` says otherwise. ``numbers``
(a list) sends one message per number and answers with a list. ``throttle_status(n)`` makes
the next ``n`` status questions answer 429 with ``Retry-After``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import itertools
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from tests.fakes.http_server import FakeService, Request, Response, serve_until_signalled

STATUS_NAMES = {
    0: "queue",
    1: "delivery",
    2: "error",
    3: "transmitted",
    4: "waiting",
    6: "reject",
    8: "moderation",
}


class AeroAnswer(StrEnum):
    OK = "ok"  # 200 success with the message's data
    SLOW = "slow"  # like OK, after slow_seconds
    NO_MONEY = "no_money"  # 402 success: false, "Insufficient funds."
    NO_MONEY_ENVELOPE = "no_money_envelope"  # 200 success: false, "Insufficient funds."
    LEGACY_NO_CREDITS = "legacy_no_credits"  # 200 {"result": "no credits"}
    LEGACY_REJECT = "legacy_reject"  # 200 {"result": "reject", "reason": ...}
    REFUSED = "refused"  # 200 success: false with another message
    VALIDATION = "validation"  # 400 "Validation error." with field errors
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After: 1
    SERVER_ERROR = "server_error"  # 500 with an HTML page
    GARBAGE = "garbage"  # 200 with an HTML body
    NO_ID = "no_id"  # 200 success with data that has no id
    LONG_ID = "long_id"  # 200 success with an id of 300 characters


ACCEPTING = frozenset({AeroAnswer.OK, AeroAnswer.SLOW, AeroAnswer.NO_ID, AeroAnswer.LONG_ID})
TEXT_CHARS = (2, 640)


@dataclass(slots=True)
class SentSms:
    id: int
    number: str
    text: str
    sign: str
    status: int = 0
    created_at: int = field(default_factory=lambda: int(time.time()))

    def as_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.sign,
            "number": self.number,
            "text": self.text,
            "status": self.status,
            "extendStatus": STATUS_NAMES.get(self.status, "unknown"),
            "channel": "FREE SIGN",
            "cost": 4.19,
            "dateCreate": self.created_at,
            "dateSend": self.created_at,
        }


class FakeSmsAero(FakeService):
    """The fake SMS Aero API; see the module docstring."""

    def __init__(
        self,
        *,
        email: str = "user@example.com",
        api_key: str = "test-api-key",
        latency: float = 0.0,
        slow_seconds: float = 5.0,
        default_answer: AeroAnswer = AeroAnswer.OK,
        record: IO[str] | None = None,
        port: int = 0,
    ) -> None:
        self.expected_authorization = "Basic " + base64.b64encode(
            f"{email}:{api_key}".encode()
        ).decode("ascii")
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.default_answer = default_answer
        self.requests: list[Request] = []
        self.messages: dict[int, SentSms] = {}  # every accepted message by its id
        self.status_requests: list[object] = []  # the ids asked about, in order
        self.status_throttled = 0  # how many of the next status questions get a 429
        self.sends_by_number: Counter[str] = Counter()  # every valid send received, accepted or not
        self._record = record
        self._scripts: defaultdict[str, deque[AeroAnswer]] = defaultdict(deque)
        self._ids = itertools.count(539_820_423)
        super().__init__(port=port)

    @property
    def url(self) -> str:
        """The base URL to configure as SMSAERO_URL."""
        return f"{self._server.base_url}/v2"

    def script(self, number: str, *answers: AeroAnswer) -> None:
        """The next sends to ``number`` get these answers in order, then ``default_answer``."""
        self._scripts[number].extend(answers)

    def throttle_status(self, count: int) -> None:
        self.status_throttled += count

    def set_status(self, message_id: int | str, status: int) -> None:
        self.messages[int(message_id)].status = status

    def _progress(self) -> str:
        return f"have {len(self.messages)}"

    def accepted_numbers(self) -> list[str]:
        return [sms.number for sms in self.messages.values()]

    def duplicates(self) -> list[str]:
        """Numbers that were sent the same text more than once."""
        counts = Counter((sms.number, sms.text) for sms in self.messages.values())
        return sorted(number for (number, _text), count in counts.items() if count > 1)

    async def wait_for_messages(self, count: int, within: float = 5.0) -> None:
        await self._wait(lambda: len(self.messages) >= count, f"{count} messages", within)

    async def _handle(self, request: Request) -> Response:
        self.requests.append(request)
        if request.headers.get("authorization") != self.expected_authorization:
            return _envelope(401, None, "Your request was made with invalid credentials.")
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if request.method == "POST" and request.path == "/v2/sms/send":
            return await self._send(_fields(request))
        if request.method == "POST" and request.path == "/v2/sms/status":
            return self._status(_fields(request))
        if request.method == "GET" and request.path == "/v2/stats":
            return Response.json(200, {"sends_by_number": dict(self.sends_by_number)})
        return _envelope(404, None, "Not Found")

    async def _send(self, fields: dict[str, Any]) -> Response:
        numbers = fields.get("numbers")
        if isinstance(numbers, list):
            return await self._send_many([str(number) for number in numbers], fields)
        number, text, sign = (str(fields.get(key) or "") for key in ("number", "text", "sign"))
        errors = _validation_errors(number, text, sign)
        if errors:
            return _envelope(400, errors, "Validation error.")
        self.sends_by_number[number] += 1
        script = self._scripts.get(number)
        answer = script.popleft() if script else self.default_answer
        if answer not in ACCEPTING:
            return _failure(answer)
        sms = SentSms(next(self._ids), number, text, sign)
        self.messages[sms.id] = sms
        if self._record is not None:
            self._record.write(f"{sms.id} {number}\n")
        await self._notify()
        if answer is AeroAnswer.SLOW:
            await asyncio.sleep(self.slow_seconds)
        data = sms.as_data()
        if answer is AeroAnswer.NO_ID:
            del data["id"]
        if answer is AeroAnswer.LONG_ID:
            data["id"] = "5" * 300
        return _envelope(200, data, None)

    async def _send_many(self, numbers: list[str], fields: dict[str, Any]) -> Response:
        text, sign = (str(fields.get(key) or "") for key in ("text", "sign"))
        errors = {}
        for number in numbers:
            errors.update(_validation_errors(number, text, sign))
        if errors or not numbers:
            return _envelope(
                400, errors or {"numbers": ["Numbers cannot be blank."]}, "Validation error."
            )
        sent = [SentSms(next(self._ids), number, text, sign) for number in numbers]
        for sms in sent:
            self.messages[sms.id] = sms
        await self._notify()
        return _envelope(200, [sms.as_data() for sms in sent], None)

    def _status(self, fields: dict[str, Any]) -> Response:
        message_id = fields.get("id")
        self.status_requests.append(message_id)
        if self.status_throttled > 0:
            self.status_throttled -= 1
            response = _envelope(429, None, "Too many requests.")
            return dataclasses.replace(response, headers=(("Retry-After", "2"),))
        raw_id = str(message_id)
        sms = self.messages.get(int(raw_id)) if raw_id.isdigit() else None
        if sms is None:
            return _envelope(404, None, "Message not found.")
        return _envelope(200, sms.as_data(), None)


def _fields(request: Request) -> dict[str, Any]:
    try:
        body = request.json() if request.body else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _validation_errors(number: str, text: str, sign: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not (number.isdigit() and 7 <= len(number) <= 15):
        errors["number"] = ["Invalid phone number."]
    if not text.strip():
        errors["text"] = ["Text cannot be blank."]
    elif not TEXT_CHARS[0] <= len(text) <= TEXT_CHARS[1]:
        errors["text"] = ["Text length must be between 2 and 640 characters."]
    if not sign.strip():
        errors["sign"] = ["Sign cannot be blank."]
    return errors


def _failure(answer: AeroAnswer) -> Response:
    match answer:
        case AeroAnswer.NO_MONEY:
            return _envelope(402, None, "Insufficient funds.")
        case AeroAnswer.NO_MONEY_ENVELOPE:
            return _envelope(200, None, "Insufficient funds.")
        case AeroAnswer.LEGACY_NO_CREDITS:
            return Response.json(200, {"result": "no credits"})
        case AeroAnswer.LEGACY_REJECT:
            return Response.json(200, {"result": "reject", "reason": "incorrect sender name"})
        case AeroAnswer.REFUSED:
            return _envelope(200, None, "Sign is not approved.")
        case AeroAnswer.VALIDATION:
            return _envelope(400, {"text": ["Text is too long."]}, "Validation error.")
        case AeroAnswer.RATE_LIMIT:
            response = _envelope(429, None, "Too many requests.")
            return dataclasses.replace(response, headers=(("Retry-After", "1"),))
        case AeroAnswer.SERVER_ERROR:
            return Response.text(500, "<html><body>Internal Server Error</body></html>")
        case AeroAnswer.GARBAGE:
            return Response.text(200, "<html><body>maintenance</body></html>")
    raise ValueError(f"{answer} is not a failure")


def _envelope(status: int, data: object, message: str | None) -> Response:
    return Response.json(
        status, {"success": status == 200 and message is None, "data": data, "message": message}
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake SMS Aero v2 API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--email", default="user@example.com")
    parser.add_argument("--api-key", default="test-api-key")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of every answer")
    parser.add_argument(
        "--answer",
        type=AeroAnswer,
        default=AeroAnswer.OK,
        choices=list(AeroAnswer),
        help="default answer to a send",
    )
    parser.add_argument("--record", type=Path, help="append '<id> <number>' per accepted message")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> None:
    record = args.record.open("a", buffering=1) if args.record else None
    try:
        aero = FakeSmsAero(
            email=args.email,
            api_key=args.api_key,
            latency=args.latency_ms / 1000,
            default_answer=args.answer,
            record=record,
            port=args.port,
        )
        await serve_until_signalled(aero.server, "smsaero")
    finally:
        if record is not None:
            record.close()


if __name__ == "__main__":
    main()
