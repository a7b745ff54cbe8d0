"""An uploaded text file (a client CSV, a stop list) read line by line, as its bytes arrive.

Memory stays flat whatever the file's size; a line that is not UTF-8 or absurdly long is a
422 naming its line number.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TypeVar

from sms_sender.errors import InvalidInput

# The longest valid row is under 200 bytes; a far longer line means this is not the right file.
MAX_LINE_BYTES = 64 * 1024

T = TypeVar("T")


async def read_lines(chunks: AsyncIterable[bytes] | Iterable[bytes]) -> AsyncIterator[str]:
    """Split a UTF-8 byte stream into lines, without their line breaks.

    A line that is not UTF-8 or absurdly long raises InvalidInput naming its line number.
    Splitting bytes at ``\\n`` is safe: in UTF-8 that byte is never part of another character.
    """
    partial = b""
    number = 0
    async for chunk in each(chunks):
        *complete, partial = (partial + chunk).split(b"\n")
        for raw in complete:
            number += 1
            yield _decode(raw, number)
        if len(partial) > MAX_LINE_BYTES:
            raise _line_error(number + 1, f"is longer than {MAX_LINE_BYTES} bytes; is it a CSV?")
    if partial:
        yield _decode(partial, number + 1)


async def each(items: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    """The items of a plain or an async iterable, as an async iterator."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _decode(raw: bytes, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _line_error(
            number, f"is not UTF-8 (byte {error.start + 1}); save the file as UTF-8 and retry"
        ) from None


def _line_error(number: int, problem: str) -> InvalidInput:
    message = f"line {number} {problem}"
    return InvalidInput(message, errors=[{"loc": ["body"], "msg": message, "line": number}])
