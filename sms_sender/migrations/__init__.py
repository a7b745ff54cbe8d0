"""Alembic, driven from code so ``sms-sender migrate`` and ``serve`` need no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender import dialects

MIGRATIONS_DIR = Path(__file__).parent
# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK_ID = 7_735_001


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade_to_head(database: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe when several processes start at once."""
    async with database.begin() as connection:
        await dialects.advisory_lock(connection, _MIGRATION_LOCK_ID)
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


async def current_revision(database: AsyncEngine) -> str | None:
    async with database.connect() as connection:
        exists = await connection.run_sync(
            lambda sync: sync.dialect.has_table(sync, "alembic_version")
        )
        if not exists:
            return None
        return (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
