"""A fresh, migrated database per figure, and set-based seeding of large tables.

Seeding never goes through the API (only the CSV import figure measures that path): a million
clients come from one ``INSERT … SELECT`` over ``generate_series`` on PostgreSQL and over a
recursive CTE on SQLite, which takes seconds instead of the hours a row-at-a-time loop would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.auth import service as auth_service
from sms_sender.clock import SystemClock
from sms_sender.consent.rules import MailingPurpose
from sms_sender.db import (
    CHANNEL_REPORTS,
    UTCDateTime,
    create_engine,
    create_sessionmaker,
    normalise_url,
    notify,
)
from sms_sender.mailings import fan_out
from sms_sender.mailings.models import Mailing, MailingStatus
from sms_sender.messages.models import Message
from sms_sender.migrations import upgrade_to_head

# Phones 7 900 0000001, 7 900 0000002, …: valid, unique, and the operator code is digits 2-4.
FIRST_PHONE = 79_000_000_000
TAGS = 10
MESSAGE_TEXT = "Benchmark: your discount code is 4242."


@dataclass
class BenchDatabase:
    kind: str
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    @property
    def is_postgresql(self) -> bool:
        return self.kind == "postgresql"


@asynccontextmanager
async def fresh_database(
    kind: str, workdir: Path, postgres_admin_url: str | None
) -> AsyncIterator[BenchDatabase]:
    """An empty database at the newest schema, dropped afterwards."""
    if kind == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
    else:
        if postgres_admin_url is None:
            raise ValueError("a PostgreSQL figure needs the throwaway cluster's admin URL")
        name = f"bench_{uuid.uuid4().hex[:12]}"
        await _admin_execute(postgres_admin_url, f'CREATE DATABASE "{name}"')
        url = normalise_url(postgres_admin_url).set(database=name).render_as_string(False)
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
        yield BenchDatabase(kind, url, engine, create_sessionmaker(engine))
    finally:
        await engine.dispose()
        if kind == "sqlite":
            _remove_sqlite_files(path)
        else:
            await _admin_execute(postgres_admin_url or "", f'DROP DATABASE "{name}" WITH (FORCE)')


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _admin_execute(admin_url: str, statement: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


_CLIENT_COLUMNS = "phone, operator_code, tag, timezone, created_at, updated_at"
# Each row from a sequence number g: tags spread evenly, operator code from the phone.
_CLIENT_ROW = (
    "CAST(:first_phone + g AS TEXT), substr(CAST(:first_phone + g AS TEXT), 2, 3), "
    "'tag' || (g % :tags), 'UTC', :now, :now"
)
_SEED_POSTGRESQL = (
    f"INSERT INTO clients ({_CLIENT_COLUMNS}) "
    f"SELECT {_CLIENT_ROW} FROM generate_series(CAST(:start AS bigint), :stop) AS g"
)
_SEED_SQLITE = (
    "WITH RECURSIVE seq(g) AS (SELECT :start UNION ALL SELECT g + 1 FROM seq WHERE g < :stop) "
    f"INSERT INTO clients ({_CLIENT_COLUMNS}) SELECT {_CLIENT_ROW} FROM seq"
)


async def seed_clients(db: BenchDatabase, count: int, *, first: int = 1) -> None:
    """Insert clients numbered first … first + count - 1 in one set-based statement."""
    statement = text(_SEED_POSTGRESQL if db.is_postgresql else _SEED_SQLITE).bindparams(
        bindparam("now", type_=UTCDateTime())
    )
    async with db.sessionmaker() as session:
        await session.execute(
            statement,
            {
                "first_phone": FIRST_PHONE,
                "tags": TAGS,
                "now": SystemClock().now(),
                "start": first,
                "stop": first + count - 1,
            },
        )
        await session.commit()
    await analyse(db)


async def analyse(db: BenchDatabase) -> None:
    """Refresh planner statistics after a bulk load, as autovacuum would a little later."""
    async with db.engine.connect() as connection:
        await connection.execute(text("ANALYZE"))
        await connection.commit()


async def add_message(session: AsyncSession, now: datetime) -> Message:
    message = Message(text=MESSAGE_TEXT, created_at=now, updated_at=now)
    session.add(message)
    await session.flush()
    return message


async def add_mailing(
    session: AsyncSession,
    message: Message,
    *,
    start_at: datetime,
    end_at: datetime,
    status: MailingStatus,
    now: datetime,
) -> Mailing:
    """A mailing row to everyone, written directly (the mailings API is measured elsewhere)."""
    mailing = Mailing(
        start_at=start_at,
        end_at=end_at,
        message_id=message.id,
        filter_operator_codes=[],
        filter_tags=[],
        status=status,
        created_at=now,
        updated_at=now,
        started_at=now if status == MailingStatus.RUNNING else None,
    )
    session.add(mailing)
    await session.flush()
    return mailing


async def start_mailing_now(db: BenchDatabase, *, lasting: timedelta) -> tuple[int, int]:
    """A running mailing to every client with its reports materialised: (mailing id, reports).

    This is the state the scheduler leaves a mailing in at start_at; the worker is woken as
    the scheduler would wake it.
    """
    now = SystemClock().now()
    async with db.sessionmaker() as session:
        message = await add_message(session, now)
        mailing = await add_mailing(
            session,
            message,
            start_at=now,
            end_at=now + lasting,
            status=MailingStatus.RUNNING,
            now=now,
        )
        created = await fan_out.materialise(
            session,
            mailing_id=mailing.id,
            text=message.text,
            operator_codes=[],
            tags=[],
            purpose=MailingPurpose.SERVICE,
            now=now,
        )
        await notify(session, CHANNEL_REPORTS)
        await session.commit()
    await analyse(db)
    return mailing.id, created


async def create_token(db: BenchDatabase) -> str:
    async with db.sessionmaker() as session:
        token = await auth_service.create_token(
            session, f"bench-{uuid.uuid4().hex[:8]}", SystemClock().now()
        )
        await session.commit()
    return token


async def count_rows(db: BenchDatabase, table: str) -> int:
    async with db.engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
