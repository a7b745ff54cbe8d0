"""Request-scoped FastAPI dependencies: the unit of work, settings and clock from app state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.audit.actor import current_actor
from sms_sender.clock import Clock
from sms_sender.config import Settings
from sms_sender.dialects import writer_turn_at_begin


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commit when the handler returns, roll back when it raises.

    On SQLite each of its transactions waits for the writer turn every process shares (the
    delivery engine's writers queue there too) at its BEGIN and gives it back after its end,
    so reading the request's body before the first statement holds nothing.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with writer_turn_at_begin(sessionmaker.kw["bind"]), sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A unit of work that only reads: on SQLite it never waits for (or takes) the write lock."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.read_sessionmaker
    async with sessionmaker() as session:
        yield session


# Dependencies are async even when they do not await: FastAPI runs a plain def in its thread
# pool, a hop to another thread and back for every request that needs one.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


# scope="function": the commit runs before the response is sent, so a 201 means committed
# (FastAPI otherwise finishes yield dependencies after the response has gone out).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def get_caller() -> str:
    """Who is acting, for consent audit entries: ``api:TOKEN-NAME``, ``admin:USER``."""
    actor = current_actor()
    return f"{actor.source}:{actor.name}"


CallerDep = Annotated[str, Depends(get_caller)]
