"""Filling the directory: ``import`` (a client CSV) and ``demo``.

The importer is imported when a command runs, not at the top: every command's module is loaded
to start any command, ``sms-sender worker`` included, and a worker never imports a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.cli._common import in_session, settings_from_env
from sms_sender.clients.schemas import ImportResult
from sms_sender.clock import SystemClock
from sms_sender.consent.service import hasher_for
from sms_sender.text_lines import read_line_batches

READ_CHUNK_BYTES = 64 * 1024


def import_csv(
    path: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="CSV: phone,operator_code,tag,timezone"),
    ],
) -> None:
    """Import clients from a CSV file; bad rows are reported by line, good rows are kept."""
    from sms_sender.clients.csv_import import import_clients

    settings = settings_from_env()

    async def work(session: AsyncSession) -> ImportResult:
        with path.open("rb") as csv_file:
            # Read in chunks, not lines: the importer decodes and checks a chunk's lines at once.
            chunks = iter(lambda: csv_file.read(READ_CHUNK_BYTES), b"")
            return await import_clients(
                session,
                read_line_batches(chunks),
                default_timezone=settings.default_timezone,
                hasher=await hasher_for(session, settings.suppression_key.get_secret_value()),
                now=SystemClock().now(),
            )

    result = in_session(settings, work)
    for error in result.errors:
        typer.echo(f"line {error.line}: {error.error}", err=True)
    if result.errors_truncated:
        typer.echo(f"… and {result.failed - len(result.errors)} more bad rows", err=True)
    typer.echo(f"imported {result.imported} clients, {result.failed} rows rejected")


def demo() -> None:
    """Fill a demo directory, two messages and two mailings, to see the whole flow at once."""
    from sms_sender.demo import load_demo

    settings = settings_from_env()

    async def work(session: AsyncSession) -> str:
        key = settings.suppression_key.get_secret_value()
        return await load_demo(session, SystemClock().now(), await hasher_for(session, key))

    summary = in_session(settings, work)
    typer.echo(summary)
