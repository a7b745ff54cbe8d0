"""What every command shares: the event loop, the settings, one audited unit of work."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.audit.actor import Actor, bind_actor
from sms_sender.audit.models import AuditSource
from sms_sender.config import Settings, describe_errors
from sms_sender.db import create_engine, create_sessionmaker
from sms_sender.errors import AppError
from sms_sender.logging import configure_logging
from sms_sender.migrations import upgrade_to_head

T = TypeVar("T")

_new_event_loop: Callable[[], asyncio.AbstractEventLoop]
# libuv's event loop: about twice as fast for the delivery engine's many small tasks and sockets.
try:
    from uvloop import new_event_loop as _new_event_loop
except ImportError:  # not built for this platform (Windows): asyncio's own loop
    _new_event_loop = asyncio.new_event_loop

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on the fastest event loop available here."""
    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        return runner.run(main)


def settings_from_env() -> Settings:
    """The settings from the environment; bad ones stop the command with a sentence each."""
    try:
        settings = Settings()
    except ValidationError as error:
        for sentence in describe_errors(error):
            typer.echo(f"error: {sentence}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_format, settings.log_level, messages=settings.log_messages)
    return settings


def in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work on a migrated database and commit it, audited as the OS user."""

    async def run() -> T:
        bind_actor(Actor(name=os_user(), source=AuditSource.CLI))
        database = create_engine(settings.database_url)
        try:
            await upgrade_to_head(database)
            async with create_sessionmaker(database)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await database.dispose()

    try:
        return run_event_loop(run())
    except AppError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None


def os_user() -> str:
    try:
        return getpass.getuser()
    except OSError:  # no user name in the environment or the password database
        return "cli"
