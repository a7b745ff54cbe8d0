"""Database plumbing: declarative Base, engine factory, after-commit wake-ups.

SQLite is the embedded default and PostgreSQL the production engine; both are reached through
SQLAlchemy's async API, with URLs normalised so that ``postgresql://`` and ``sqlite:///x.db``
work as people type them. What differs between the two lives in :mod:`sms_sender.dialects`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

from sms_sender import dialects

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# The largest id either database can store; the API refuses larger ones with a 422, not a 500.
MAX_ID = 2**63 - 1


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both engines.

    SQLite has no time zone type: values are stored as naive UTC text (which sorts correctly)
    and come back aware, so the code never meets a naive datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        return dialects.stored_datetime(dialect, value.astimezone(UTC))

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalise_url(raw: str) -> URL:
    """Map the URLs people write to the async drivers this service uses."""
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername in ("sqlite", "sqlite+pysqlite"):
        url = url.set(drivername="sqlite+aiosqlite")
    return url


def create_engine(raw_url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for the URL, set up for its database (see :func:`dialects.create_engine_for`)."""
    # An error's message would otherwise carry the statement's values (phones, texts) into logs.
    kwargs.setdefault("hide_parameters", True)
    return dialects.create_engine_for(normalise_url(raw_url), **kwargs)


def create_sessionmaker(
    engine: AsyncEngine, notifier: Notifier | None = None
) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine, expire_on_commit=False, info={"notifier": notifier or Notifier()}
    )


class Notifier:
    """In-process wake-ups fired after a commit (PostgreSQL adds LISTEN/NOTIFY across processes).

    A service calls :func:`notify` to say "the schedule changed" or "reports are due"; waiters
    (the scheduler and the workers of this process) are woken only once the change is committed.
    """

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)

    def subscribe(self, channel: str) -> asyncio.Event:
        wake = asyncio.Event()
        self._events[channel].add(wake)
        return wake

    def unsubscribe(self, channel: str, wake: asyncio.Event) -> None:
        self._events[channel].discard(wake)

    def fire(self, channel: str) -> None:
        for wake in self._events.get(channel, ()):
            wake.set()


CHANNEL_MAILINGS = "sms_sender_mailings"
CHANNEL_REPORTS = "sms_sender_reports"


async def notify(session: AsyncSession, channel: str) -> None:
    """Wake the engine once this transaction commits, in this process and (PostgreSQL) in others."""
    session.info.setdefault("pending_notifications", set()).add(channel)
    await dialects.notify_other_processes(session, channel)


@event.listens_for(Session, "after_commit")
def _fire_pending_notifications(session: Session) -> None:
    channels = session.info.pop("pending_notifications", set())
    notifier = session.info.get("notifier")
    if notifier is not None:
        for channel in channels:
            notifier.fire(channel)


@event.listens_for(Session, "after_rollback")
def _drop_pending_notifications(session: Session) -> None:
    session.info.pop("pending_notifications", None)


__all__ = [
    "CHANNEL_MAILINGS",
    "CHANNEL_REPORTS",
    "MAX_ID",
    "Base",
    "BigId",
    "Notifier",
    "UTCDateTime",
    "create_engine",
    "create_sessionmaker",
    "normalise_url",
    "notify",
]
