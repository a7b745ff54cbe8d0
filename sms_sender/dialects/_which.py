"""Which database a connection, session or engine is on (read from its dialect)."""

from __future__ import annotations

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

Bind = AsyncConnection | AsyncSession | AsyncEngine | Dialect


def dialect_of(bind: Bind) -> Dialect:
    if isinstance(bind, Dialect):
        return bind
    if isinstance(bind, AsyncSession):
        return bind.get_bind().dialect
    return bind.dialect


def on_postgresql(bind: Bind) -> bool:
    return dialect_of(bind).name == "postgresql"
