"""Alembic, driven from code so ``sms-sender migrate`` and ``serve`` need no alembic.ini.

Every start but the first after a release finds the schema already at the newest revision, so
``upgrade_to_head`` first compares ``alembic_version`` with the heads written in the versions
folder (one query) and imports alembic only when there is something to do: alembic and its
templates are about 7 MB of a worker's memory (issue 17). Whatever the quick look cannot read,
or any revision other than the head, goes to alembic exactly as before: an older schema is
upgraded, an unknown revision stops start-up with alembic's error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sms_sender import dialects

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK_ID = 7_735_001
# The module-level names alembic reads from a revision file (script.py.mako writes them).
_REVISION = re.compile(r"^revision\b[^=\n]*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def alembic_config(connection: Connection | None = None) -> Config:
    # Imported here, not at the top, for memory (see the module docstring).
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade_to_head(database: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe when several processes start at once."""
    async with database.connect() as connection:
        current = await _revisions(connection)
    if current and current == heads():
        return
    from alembic import command

    async with database.begin() as connection:
        await dialects.advisory_lock(connection, _MIGRATION_LOCK_ID)
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


def heads() -> frozenset[str]:
    """The revisions no other revision file names as its parent; empty if a file is unreadable."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS_DIR.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        down_revision = _DOWN_REVISION.search(source)
        if revision is None or down_revision is None:
            return frozenset()  # not a file we can read: let alembic decide
        revisions.add(revision.group(1))
        parents.update(_QUOTED.findall(down_revision.group(1)))
    return frozenset(revisions - parents)


async def current_revision(database: AsyncEngine) -> str | None:
    async with database.connect() as connection:
        revisions = await _revisions(connection)
    return next(iter(revisions), None)


async def _revisions(connection: AsyncConnection) -> frozenset[str]:
    exists = await connection.run_sync(lambda sync: sync.dialect.has_table(sync, "alembic_version"))
    if not exists:
        return frozenset()
    return frozenset(await connection.scalars(text("SELECT version_num FROM alembic_version")))
