"""An uploaded text file (a client CSV, a stop list) read line by line, as its bytes arrive.

Memory stays flat whatever the file's size; a line that is not UTF-8 or absurdly long is a
422 naming its line number. The bytes are decoded and split a chunk at a time
(:func:`read_line_batches`): a 1,000,000-line import pays one ``decode`` and one ``split`` per
chunk, not a call per line.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TypeVar

from sms_sender.errors import InvalidInput

# The longest valid row is under 200 bytes; a far longer line means this is not the right file.
MAX_LINE_BYTES = 64 * 1024

T = TypeVar("T")


async def read_lines(chunks: AsyncIterable[bytes] | Iterable[bytes]) -> AsyncIterator[str]:
    """Split a UTF-8 byte stream into lines, without their line breaks (see read_line_batches)."""
    async for lines in read_line_batches(chunks):
        for line in lines:
            yield line


async def read_line_batches(
    chunks: AsyncIterable[bytes] | Iterable[bytes],
) -> AsyncIterator[list[str]]:
    """The lines of a UTF-8 byte stream, without their line breaks, as lists: those each chunk ends.

    A line that is not UTF-8 or absurdly long raises InvalidInput naming its line number.
    Splitting bytes at ``\\n`` is safe: in UTF-8 that byte is never part of another character.
    """
    partial = b""
    number = 0  # lines yielded so far
    async for chunk in each(chunks):
        complete, newline, rest = (partial + chunk).rpartition(b"\n")
        if newline:
            partial = rest
            lines = _decode(complete, number).split("\n")
            number += len(lines)
            yield lines
        else:
            partial = rest
        if len(partial) > MAX_LINE_BYTES:
            raise _line_error(number + 1, f"is longer than {MAX_LINE_BYTES} bytes; is it a CSV?")
    if partial:
        yield [_decode(partial, number)]


async def each(items: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    """The items of a plain or an async iterable, as an async iterator."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _decode(raw: bytes, lines_before: int) -> str:
    """Lines of UTF-8 joined by ``\\n``, decoded; an error names the line and its byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = raw.rfind(b"\n", 0, error.start) + 1
        number = lines_before + raw.count(b"\n", 0, error.start) + 1
        raise _line_error(
            number,
            f"is not UTF-8 (byte {error.start - line_start + 1}); save the file as UTF-8 and retry",
        ) from None


def _line_error(number: int, problem: str) -> InvalidInput:
    message = f"line {number} {problem}"
    return InvalidInput(message, errors=[{"loc": ["body"], "msg": message, "line": number}])
