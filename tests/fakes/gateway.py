"""A fake "probe" gateway: ``POST /send/{id}`` with a bearer token, answering like the real one.

In a test (same event loop)::

    async with ProbeGateway(token="secret") as gateway:
        settings = Settings(provider="http", http_url=gateway.url, http_token="secret")
        gateway.script(79000000001, Answer.SERVER_ERROR, Answer.OK)  # 500 once, then accepted
        ...
        await gateway.wait_for_accepted(10)
        assert gateway.duplicates() == []

As a process (for tests that kill the worker, and for benchmarks)::

    python -m tests.fakes.gateway --port 0 --latency-ms 50 --record accepted.txt [--token T]

prints ``probe gateway listening on http://127.0.0.1:PORT`` as its first line, appends the id of
every accepted message to the record file (one per line, written before the answer is sent, so
the file survives the death of the client) and stops on SIGTERM. ``GET /stats`` answers
``{"received": n, "accepted": n, "duplicates": n, "duplicate_phones": n, "by_phone": {...}}``
(ids, and phones, accepted more than once; messages received per phone). ``GatewayProcess``
wraps all this. ``--host 0.0.0.0`` is only for a
container on a Docker network of its own (scripts/docker-smoke); everywhere else it stays on
loopback.

What it answers, in order: 401 for a missing or wrong token, 404 for another path, 400 for a
body that is not ``{"id": <the path's id>, "phone": <int>, "text": <str>}``, then the scripted
``Answer`` for that phone, else ``default_answer``. A message counts as *accepted* (and is
recorded) the moment an ``OK`` or ``SLOW`` answer is chosen, before any latency: a real gateway
delivers what it took even if its answer never reaches the caller.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import subprocess
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from email.utils import formatdate
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from tests.fakes.http_server import (
    LOOPBACK,
    FakeService,
    HangUp,
    Request,
    Reset,
    Response,
    encode,
    serve_until_signalled,
    start_listening_process,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Answer(StrEnum):
    OK = "ok"  # 200 {"code": 0, "message": "OK"}
    SLOW = "slow"  # like OK, after slow_seconds
    REJECT = "reject"  # 200 {"code": 3, "message": "phone is on the stop list"}
    BAD_REQUEST = "bad_request"  # 400 with a JSON reason
    TOO_MANY_REQUESTS = "too_many_requests"  # 429 with Retry-After: 1
    UNAVAILABLE = "unavailable"  # 503 with Retry-After as an HTTP-date 2 s ahead
    SERVER_ERROR = "server_error"  # 500 with an HTML page
    BAD_GATEWAY = "bad_gateway"  # 502 from a proxy in front of the gateway
    GATEWAY_TIMEOUT = "gateway_timeout"  # 504 from a proxy in front of the gateway
    GARBAGE = "garbage"  # 200 with an HTML body
    NO_CODE = "no_code"  # 200 with JSON that has no "code"
    HANG_UP = "hang_up"  # closes the connection without answering
    RESET = "reset"  # resets the connection (RST) after reading the request
    STRAY = "stray"  # like OK, with a second, forged answer appended on the connection
    STRAY_LATER = "stray_later"  # like OK, the forged answer 50 ms later, on the idle connection
    LONG_ID = "long_id"  # like OK, with a message id of 300 characters
    HUGE = "huge"  # like OK, with a body of 100 KiB


# The gateway took these messages, whatever reaches the caller.
ACCEPTING = frozenset(
    {Answer.OK, Answer.SLOW, Answer.STRAY, Answer.STRAY_LATER, Answer.LONG_ID, Answer.HUGE}
)
STRAY_ID = "stray-forged-id"


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    id: int
    phone: int
    text: str
    answer: Answer


class ProbeGateway(FakeService):
    """The fake probe gateway; see the module docstring."""

    def __init__(
        self,
        *,
        token: str | None = "test-token",
        latency: float = 0.0,
        slow_seconds: float = 5.0,
        default_answer: Answer = Answer.OK,
        record: IO[str] | None = None,
        keep_history: bool = True,
        port: int = 0,
        host: str = LOOPBACK,
    ) -> None:
        self.token = token  # None accepts any caller
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.default_answer = default_answer
        # With keep_history (in tests) every request and every valid message is kept; a long
        # benchmark run keeps only the counts and the accepted ids.
        self.requests: list[Request] = []
        self.received: list[ReceivedMessage] = []
        self.received_count = 0
        self.received_by_phone: Counter[int] = Counter()
        self.accepted_ids: list[int] = []  # repeats included
        self.accepted_phones: Counter[int] = Counter()
        self._record = record
        self._keep_history = keep_history
        self._scripts: defaultdict[int, deque[Answer]] = defaultdict(deque)
        super().__init__(port=port, host=host)

    @property
    def url(self) -> str:
        return self._server.base_url

    def script(self, phone: int | str, *answers: Answer) -> None:
        """The next messages to ``phone`` get these answers in order, then ``default_answer``."""
        self._scripts[int(phone)].extend(answers)

    def duplicates(self) -> list[int]:
        """Ids accepted more than once: a client who would get the message twice."""
        counts = Counter(self.accepted_ids)
        return sorted(message_id for message_id, count in counts.items() if count > 1)

    async def wait_for_received(self, count: int, within: float = 5.0) -> None:
        await self._wait(lambda: self.received_count >= count, f"{count} messages", within)

    async def wait_for_accepted(self, count: int, within: float = 5.0) -> None:
        await self._wait(lambda: len(self.accepted_ids) >= count, f"{count} accepted", within)

    def _progress(self) -> str:
        return f"received {self.received_count}, accepted {len(self.accepted_ids)}"

    @property
    def connections_opened(self) -> int:
        return self._server.connections_opened

    async def _handle(self, request: Request) -> Response:
        if self._keep_history:
            self.requests.append(request)
        if request.method == "GET" and request.path == "/stats":
            return self._stats()
        if self.token is not None and request.headers.get("authorization") != (
            f"Bearer {self.token}"
        ):
            return Response.json(401, {"code": 401, "message": "invalid or missing token"})
        message_id = _path_id(request)
        if request.method != "POST" or message_id is None:
            return Response.json(404, {"code": 404, "message": f"no route {request.path}"})
        parsed = _parse_message(request, message_id)
        if isinstance(parsed, str):
            return Response.json(400, {"code": 400, "message": parsed})
        return await self._answer(parsed)

    async def _answer(self, message: tuple[int, int, str]) -> Response:
        message_id, phone, text = message
        script = self._scripts.get(phone)
        answer = script.popleft() if script else self.default_answer
        self.received_count += 1
        self.received_by_phone[phone] += 1
        if self._keep_history:
            self.received.append(ReceivedMessage(message_id, phone, text, answer))
        if answer in ACCEPTING:
            self.accepted_ids.append(message_id)
            self.accepted_phones[phone] += 1
            if self._record is not None:
                self._record.write(f"{message_id}\n")  # line-buffered: on disk before we answer
        await self._notify()
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return await self._response(answer, message_id)

    async def _response(self, answer: Answer, message_id: int) -> Response:
        match answer:
            case Answer.OK:
                return Response.json(200, {"code": 0, "message": "OK", "id": message_id})
            case Answer.SLOW:
                await asyncio.sleep(self.slow_seconds)
                return Response.json(200, {"code": 0, "message": "OK", "id": message_id})
            case Answer.REJECT:
                return Response.json(200, {"code": 3, "message": "phone is on the stop list"})
            case Answer.BAD_REQUEST:
                return Response.json(400, {"code": 400, "message": "text is too long"})
            case Answer.TOO_MANY_REQUESTS:
                return _with_headers(
                    Response.json(429, {"code": 429, "message": "slow down"}), ("Retry-After", "1")
                )
            case Answer.UNAVAILABLE:
                later = formatdate(time.time() + 2, usegmt=True)
                return _with_headers(
                    Response.text(503, "<html><body>Service Unavailable</body></html>"),
                    ("Retry-After", later),
                )
            case Answer.SERVER_ERROR:
                return Response.text(500, "<html><body>Internal Server Error</body></html>")
            case Answer.BAD_GATEWAY:
                return Response.text(502, "<html><body>502 Bad Gateway</body></html>")
            case Answer.GATEWAY_TIMEOUT:
                return Response.text(504, "<html><body>504 Gateway Time-out</body></html>")
            case Answer.RESET:
                raise Reset
            case Answer.STRAY | Answer.STRAY_LATER:
                accepted = Response.json(200, {"code": 0, "message": "OK", "id": message_id})
                forged = encode(
                    Response.json(200, {"code": 0, "message": "OK", "id": STRAY_ID}),
                    keep_alive=True,
                )
                later = 0.05 if answer is Answer.STRAY_LATER else None
                return dataclasses.replace(accepted, stray=forged, stray_after=later)
            case Answer.LONG_ID:
                return Response.json(200, {"code": 0, "message": "OK", "id": "7" * 300})
            case Answer.HUGE:
                padding = "x" * (100 * 1024)
                return Response.json(200, {"code": 0, "message": "OK", "padding": padding})
            case Answer.GARBAGE:
                return Response.text(200, "<html><body>Welcome to nginx!</body></html>")
            case Answer.NO_CODE:
                return Response.json(200, {"status": "queued"})
            case Answer.HANG_UP:
                raise HangUp

    def _stats(self) -> Response:
        return Response.json(
            200,
            {
                "received": self.received_count,
                "accepted": len(self.accepted_ids),
                "duplicates": len(self.duplicates()),
                "by_phone": {str(phone): n for phone, n in self.received_by_phone.items()},
                "duplicate_phones": sum(1 for n in self.accepted_phones.values() if n > 1),
            },
        )


def _with_headers(response: Response, *headers: tuple[str, str]) -> Response:
    return dataclasses.replace(response, headers=headers)


def _path_id(request: Request) -> int | None:
    prefix, _, tail = request.path.rpartition("/")
    if prefix.endswith("/send"):
        return int(tail) if tail.isdigit() else None
    return None


def _parse_message(request: Request, path_id: int) -> tuple[int, int, str] | str:
    """(id, phone, text) of a valid body, or the reason it is not valid."""
    try:
        body: Any = request.json()
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    message_id, phone, text = body.get("id"), body.get("phone"), body.get("text")
    if type(message_id) is not int or message_id != path_id:
        return f"id must be the integer {path_id} from the path"
    if type(phone) is not int:
        return "phone must be an integer"
    if not isinstance(text, str):
        return "text must be a string"
    return message_id, phone, text


class GatewayProcess:
    """``python -m tests.fakes.gateway`` as a child process; its record outlives any client.

    ``with GatewayProcess(tmp_path / "accepted.txt", latency_ms=20) as gateway:`` starts it on a
    free port (``gateway.url``); ``gateway.accepted_ids()`` reads the record; leaving the block
    stops it with SIGTERM.
    """

    def __init__(
        self,
        record: Path,
        *,
        token: str | None = "test-token",
        latency_ms: float = 0.0,
        slow_seconds: float = 5.0,
        default_answer: Answer = Answer.OK,
    ) -> None:
        self.record = record
        self.token = token
        self._arguments = [
            "--record",
            str(record),
            "--latency-ms",
            str(latency_ms),
            "--slow-seconds",
            str(slow_seconds),
            "--answer",
            default_answer.value,
        ]
        if token is not None:
            self._arguments += ["--token", token]
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        self._process, self.url = start_listening_process(
            "tests.fakes.gateway", ["--port", "0", *self._arguments], PROJECT_ROOT
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        self._process.terminate()
        self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def accepted_ids(self) -> list[int]:
        if not self.record.exists():
            return []
        return [int(line) for line in self.record.read_text().split()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake probe SMS gateway on 127.0.0.1.")
    parser.add_argument("--host", default=LOOPBACK, help="0.0.0.0 only inside a container")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="required bearer token (default: any)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of every answer")
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="delay of a slow answer")
    parser.add_argument("--record", type=Path, help="append each accepted message id here")
    parser.add_argument(
        "--answer", type=Answer, default=Answer.OK, choices=list(Answer), help="default answer"
    )
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> None:
    record = args.record.open("a", buffering=1) if args.record else None
    try:
        gateway = ProbeGateway(
            token=args.token,
            latency=args.latency_ms / 1000,
            slow_seconds=args.slow_seconds,
            default_answer=args.answer,
            record=record,
            keep_history=False,
            port=args.port,
            host=args.host,
        )
        await serve_until_signalled(gateway.server, "probe gateway")
    finally:
        if record is not None:
            record.close()


if __name__ == "__main__":
    main()
