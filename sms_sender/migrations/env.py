"""Alembic environment: runs on the connection handed over by sms_sender.migrations."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from sms_sender.config import Settings
from sms_sender.db import create_engine
from sms_sender.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    engine = create_engine(Settings().database_url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the plain `alembic` command line, used to write new revisions
    asyncio.run(_run_with_own_engine())
