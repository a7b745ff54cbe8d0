"""The migrations build the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sms_sender.migrations import (
    VERSIONS_DIR,
    alembic_config,
    current_revision,
    heads,
    upgrade_to_head,
)
from sms_sender.models import Base

# SQLite's reflection cannot read an expression index back, so the reports' page index is
# compared on PostgreSQL only (tests/reports/test_report_pages.py checks SQLite's plans use it).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index"),
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based"),
]


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


def _alembic_heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_heads_read_from_the_files_are_alembics() -> None:
    """The quick look at start-up finds the same newest revision alembic does."""
    assert heads() == _alembic_heads()


def test_a_revision_file_the_quick_look_cannot_read_leaves_it_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for source in VERSIONS_DIR.glob("*.py"):
        (tmp_path / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "20300101_later_0001.py").write_text("revision = make_id()\n", encoding="utf-8")
    monkeypatch.setattr("sms_sender.migrations.VERSIONS_DIR", tmp_path)
    assert heads() == frozenset()


async def test_an_older_schema_is_upgraded_at_start(clean_db: AsyncEngine) -> None:
    """What `worker`, `api`, `serve` and `migrate` run first: an older schema reaches head."""
    (head,) = _alembic_heads()
    script = ScriptDirectory.from_config(alembic_config()).get_revision(head)
    async with clean_db.begin() as connection:
        await connection.run_sync(
            lambda sync: command.downgrade(alembic_config(sync), str(script.down_revision))
        )
    assert await current_revision(clean_db) == script.down_revision
    await upgrade_to_head(clean_db)
    assert await current_revision(clean_db) == head
    async with clean_db.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_an_unknown_revision_stops_start_up_with_alembics_error(
    clean_db: AsyncEngine,
) -> None:
    """A schema newer than this release (or from another project) is refused, not touched."""
    (head,) = _alembic_heads()
    async with clean_db.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'from_later'"))
    try:
        with pytest.raises(CommandError, match="from_later"):
            await upgrade_to_head(clean_db)
    finally:
        async with clean_db.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )
    assert await current_revision(clean_db) == head


async def test_a_start_on_the_newest_schema_does_not_load_alembic(
    db_engine: AsyncEngine, database_url: str
) -> None:
    """Alembic is about 7 MB of a worker's memory; a start with nothing to migrate leaves it out."""
    check = (
        "import asyncio, sys\n"
        "from sms_sender.db import create_engine\n"
        "from sms_sender.migrations import upgrade_to_head\n"
        "async def start():\n"
        "    engine = create_engine(sys.argv[1])\n"
        "    await upgrade_to_head(engine)\n"
        "    await engine.dispose()\n"
        "asyncio.run(start())\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('alembic', 'mako')))\n"
    )
    started = await asyncio.create_subprocess_exec(
        sys.executable, "-c", check, database_url, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await started.communicate()
    assert started.returncode == 0
    assert output.decode().strip() == "[]"


async def test_report_ids_come_in_blocks_on_postgresql(db_engine: AsyncEngine) -> None:
    """A fan-out's nextval per report reads a cached block, not the sequence's page each time."""
    if db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite gives rowids without a sequence")
    async with db_engine.connect() as connection:
        cache = await connection.scalar(
            text("SELECT cache_size FROM pg_sequences WHERE sequencename = 'reports_id_seq'")
        )
    assert cache == 1000


async def test_a_fan_outs_reports_cost_postgresql_fewer_index_entries(
    db_engine: AsyncEngine,
) -> None:
    """(status, id) leaves pending reports out; phone and status compare in bytes.

    Autogenerate compares neither an index's condition nor, reliably, a collation.
    """
    if db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps its full (status, id) and has no such collation cost")
    async with db_engine.connect() as connection:
        definition = await connection.scalar(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_reports_status_id'")
        )
        rows = (
            await connection.execute(
                text(
                    "SELECT attname, attcollation::regcollation::text FROM pg_attribute "
                    "WHERE attrelid = 'reports'::regclass AND attname IN ('phone', 'status')"
                )
            )
        ).all()
    collations = {str(name): str(collation) for name, collation in rows}
    assert "WHERE ((status)::text <> 'pending'::text)" in definition
    assert collations == {"phone": '"C"', "status": '"C"'}


_REPORT = (
    "INSERT INTO reports (mailing_id, client_id, phone, text, timezone, status, error, "
    "attempts, next_attempt_at, created_at, updated_at) VALUES (:mailing_id, :client_id, "
    "'79160000001', 'hi', 'UTC', :status, :error, 0, :now, :now, :now)"
)


async def _counters(connection: AsyncConnection, *key: str) -> dict[tuple[Any, ...], int]:
    columns = ", ".join(key)
    rows = await connection.execute(
        text(
            f"SELECT {columns}, sum(reports) FROM mailing_report_counts GROUP BY {columns} "
            "HAVING sum(reports) <> 0"
        )
    )
    return {tuple(row[:-1]): int(row[-1]) for row in rows}


async def test_skipped_reports_are_counted_by_reason_once_upgraded_and_by_status_once_down(
    clean_db: AsyncEngine,
) -> None:
    """Reports made before 20261202_skipcounts_0001 count by reason after it, and the
    downgrade leaves counters its older triggers keep exact."""
    before = "20261202_tidy_0001"
    reports = [
        (1, "skipped", "no_consent"),
        (1, "skipped", "no_consent"),
        (1, "skipped", "opted_out"),
        (1, "pending", None),
        (1, "failed", "refused"),
        (2, "skipped", "opted_out"),
    ]
    now = datetime(2030, 1, 1, tzinfo=UTC)
    async with clean_db.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), before))
        for client_id, (mailing_id, status, error) in enumerate(reports, start=1):
            await connection.execute(
                text(_REPORT),
                {
                    "mailing_id": mailing_id,
                    "client_id": client_id,
                    "status": status,
                    "error": error,
                    "now": now,
                },
            )
    try:
        async with clean_db.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
        async with clean_db.connect() as connection:
            assert await _counters(connection, "mailing_id", "status", "reason") == {
                (1, "skipped", "no_consent"): 2,
                (1, "skipped", "opted_out"): 1,
                (1, "pending", ""): 1,
                (1, "failed", ""): 1,
                (2, "skipped", "opted_out"): 1,
            }

        async with clean_db.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), before))
            await connection.execute(
                text(
                    "UPDATE reports SET status = 'skipped', error = 'opted_out' "
                    "WHERE status = 'pending'"
                )
            )
            assert await _counters(connection, "mailing_id", "status") == {
                (1, "skipped"): 4,
                (1, "failed"): 1,
                (2, "skipped"): 1,
            }
    finally:
        async with clean_db.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


async def test_a_clients_earlier_phones_are_found_once_upgraded_and_kept_by_the_trigger(
    clean_db: AsyncEngine,
) -> None:
    """The upgrade records the phones clients had when their reports were made; changes after
    it are recorded by the trigger; the partial phone index is back to full once down."""
    before = "20261202_skipcounts_0001"
    now = {"now": datetime(2030, 1, 1, tzinfo=UTC)}
    client = (
        "INSERT INTO clients (id, phone, operator_code, timezone, created_at, updated_at) "
        "VALUES (:id, :phone, '916', 'UTC', :now, :now)"
    )
    async with clean_db.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), before))
        await connection.execute(text(client), {"id": 7, "phone": "79160000007"} | now)
        await connection.execute(text(client), {"id": 8, "phone": "79160000008"} | now)
        # Client 7's report was made under 79160000001 (_REPORT's phone), then it moved.
        for client_id in (7, 8):
            await connection.execute(
                text(_REPORT.replace("'79160000001'", ":phone")),
                {"mailing_id": 1, "client_id": client_id, "status": "sent", "error": None}
                | {"phone": "79160000001" if client_id == 7 else "79160000008"}
                | now,
            )
    async with clean_db.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
        await connection.execute(text("UPDATE clients SET phone = '79160000009' WHERE id = 8"))
        await connection.execute(text("UPDATE clients SET tag = 'moved' WHERE id = 7"))
    async with clean_db.connect() as connection:
        former = (
            await connection.execute(text("SELECT phone, client_id FROM client_former_phones"))
        ).all()
    assert sorted(tuple(row) for row in former) == [("79160000001", 7), ("79160000008", 8)]
    async with clean_db.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), before))
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("reports"))
    assert "client_former_phones" not in names
    [phone_index] = [index for index in indexes if index["name"] == "ix_reports_phone"]
    assert not phone_index.get("dialect_options", {}).get(f"{clean_db.dialect.name}_where")
    async with clean_db.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
