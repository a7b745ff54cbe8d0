"""The migrations build the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
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
