"""Request body limits, enforced before and while a body is read: 413 problem+json past them.

Every route gets ``SMS_SENDER_MAX_BODY_BYTES`` (64 KiB: the largest valid JSON body is a few
KiB); the CSV import gets its own, larger ``SMS_SENDER_MAX_IMPORT_BYTES``. A declared
Content-Length over the limit is refused before a byte of the body is read; a body sent without
one (chunked) is counted as it arrives and refused the moment it passes the limit, so memory
never holds more than the limit whatever a client sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sms_sender.problems import problem


class BodyTooLarge(HTTPException):
    """A body over its route's limit; an HTTPException so FastAPI passes it on while parsing."""

    def __init__(self, limit: Limit) -> None:
        super().__init__(
            413,
            f"the request body is larger than {limit.bytes} bytes, the limit for this route; "
            f"send less, or raise {limit.setting}",
        )


@dataclass(frozen=True)
class Limit:
    bytes: int
    setting: str  # the environment variable that sets it, named in the 413


class BodyLimit:
    """Pure ASGI middleware: the ``default`` limit for every path, ``larger`` ones for a few."""

    def __init__(self, app: ASGIApp, *, default: Limit, larger: Mapping[str, Limit]) -> None:
        self.app = app
        self.default = default
        self.larger = larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit.bytes:
            await _refuse(BodyTooLarge(limit), scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.bytes:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as too_large:  # raised where no exception handler caught it
            if started:
                raise
            await _refuse(too_large, scope, receive, send)


async def _refuse(too_large: BodyTooLarge, scope: Scope, receive: Receive, send: Send) -> None:
    # Connection: close, since the rest of the body is never read.
    response = problem(
        413, "Content too large", str(too_large.detail), headers={"Connection": "close"}
    )
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:  # the server rejects a malformed one before we see it
                return None
    return None
