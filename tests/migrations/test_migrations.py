"""The migrations build the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.migrations import alembic_config, current_revision
from sms_sender.models import Base


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_from_empty_reaches_head(db_engine: AsyncEngine) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await current_revision(db_engine) == head


async def test_models_match_migrations(db_engine: AsyncEngine) -> None:
    """Autogenerate finds nothing to do: no model change lacks its migration."""
    async with db_engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_reports_unique_per_mailing_and_client(db_engine: AsyncEngine) -> None:
    async with db_engine.connect() as connection:
        uniques = await connection.run_sync(
            lambda sync: inspect(sync).get_unique_constraints("reports")
        )
    assert {"mailing_id", "client_id"} in [set(u["column_names"]) for u in uniques]


@pytest.mark.parametrize("table", ["clients", "messages", "mailings", "reports", "api_tokens"])
async def test_every_table_exists(db_engine: AsyncEngine, table: str) -> None:
    async with db_engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    assert table in names


async def test_interrupted_reports_become_unknown(clean_db: AsyncEngine) -> None:
    """Reports left `interrupted` by an older release read `unknown` after the upgrade."""
    before = "0003"  # the last revision that knew `interrupted`
    async with clean_db.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), before))
        await connection.execute(
            text(
                "INSERT INTO reports (mailing_id, client_id, phone, text, timezone, status, "
                "attempts, next_attempt_at, created_at, updated_at) VALUES (1, 1, '79160000001', "
                "'hi', 'UTC', 'interrupted', 1, :now, :now, :now)"
            ),
            {"now": datetime(2030, 1, 1, tzinfo=UTC)},
        )
    async with clean_db.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
    async with clean_db.connect() as connection:
        statuses = list(await connection.scalars(text("SELECT status FROM reports")))
    assert statuses == ["unknown"]
