"""Receiving a CSV upload whole before anything is imported from it.

A client may send slowly (issue 11: 1,200 rows, then a byte a second). Importing while the
body arrives held a transaction, and on SQLite the write lock, for as long as the client
liked. So the body is first spooled to a temporary file (in memory up to 1 MiB, then on disk),
under the import's size limit (``sms_sender.limits``) and with a timeout on each read of the
body; only the complete file is imported, and no database connection is held meanwhile.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import BinaryIO, cast

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message, Receive

from sms_sender.errors import InvalidInput, RequestTimeout, UnsupportedMediaType

SPOOL_IN_MEMORY_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024


@asynccontextmanager
async def received_csv(request: Request, read_timeout: float) -> AsyncIterator[UploadFile]:
    """The whole CSV of a text/csv or multipart request, rewound; removed after the block."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    timed = Request(request.scope, _with_read_timeout(request.receive, read_timeout))
    if media_type == "text/csv":
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
            received = UploadFile(cast(BinaryIO, spool))  # what Starlette's form parser does
            async for chunk in timed.stream():
                await received.write(chunk)
            await received.seek(0)
            yield received
        return
    if media_type == "multipart/form-data":
        # Starlette spools the file part the same way (memory up to 1 MiB, then disk).
        async with timed.form(max_files=1, max_fields=10) as form:
            field = form.get("file")
            if not isinstance(field, UploadFile):
                raise InvalidInput.field(
                    ["body", "file"], "send the CSV as a file field named 'file'"
                )
            yield field
        return
    raise UnsupportedMediaType(
        "send the CSV as text/csv or as a multipart/form-data file field 'file', "
        f"not {media_type or 'a body without Content-Type'}"
    )


async def chunks_of(upload: UploadFile) -> AsyncIterator[bytes]:
    """The file's bytes from where it stands, a chunk at a time."""
    while chunk := await upload.read(READ_CHUNK_BYTES):
        yield chunk


def _with_read_timeout(receive: Receive, seconds: float) -> Receive:
    async def receive_or_give_up() -> Message:
        try:
            async with asyncio.timeout(seconds):
                return await receive()
        except TimeoutError:
            raise RequestTimeout(
                f"the upload stalled: nothing arrived for {seconds:g} seconds "
                "(SMS_SENDER_UPLOAD_READ_TIMEOUT); nothing was imported, send the file again"
            ) from None

    return receive_or_give_up
