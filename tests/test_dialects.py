"""Differences between SQLite and PostgreSQL live in sms_sender/dialects/, nowhere else.

A caller that branches on the dialect's name, or builds a statement from one dialect's own
module, is where a fix for one database misses the other. Migrations are frozen history and
keep their own branches.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession

import sms_sender
from sms_sender import dialects

PACKAGE = Path(sms_sender.__file__).parent
ALLOWED = PACKAGE / "dialects"
FROZEN = PACKAGE / "migrations"
# Asking which database this is, or importing one database's own statements.
DIALECT_BRANCH = re.compile(r"dialect\.name|\bsqlalchemy\.dialects\b|get_backend_name\(")


def _branching_modules() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(ALLOWED) or path.is_relative_to(FROZEN):
            continue
        lines = [
            f"{number}: {line.strip()}"
            for number, line in enumerate(path.read_text().splitlines(), start=1)
            if DIALECT_BRANCH.search(line)
        ]
        if lines:
            found[path.relative_to(PACKAGE).as_posix()] = lines
    return found


def test_only_the_dialects_module_branches_on_the_database() -> None:
    found = _branching_modules()
    assert not found, (
        "branch on the database only in sms_sender/dialects/ (add a named operation there): "
        f"{found}"
    )


def test_the_check_sees_a_branch() -> None:
    assert DIALECT_BRANCH.search('if connection.dialect.name == "postgresql":')
    assert DIALECT_BRANCH.search("from sqlalchemy.dialects import postgresql, sqlite")
    assert not DIALECT_BRANCH.search("from sms_sender import dialects")


TRICKY_TEXT = [
    "79001234567",
    "a, b",
    'say "hi"',
    "back\\slash",
    "日本 €",
    "\u2028 line sep",
    "",
    None,
]


@pytest.mark.parametrize(
    "columns",
    [
        {"phone": String(), "tag": String()},  # text only: one JSON document on both databases
        {"phone": String(), "number": Integer()},  # PostgreSQL: one array per column
    ],
)
async def test_given_rows_reads_back_every_value_as_it_was_given(
    session: AsyncSession, columns: dict[str, Any]
) -> None:
    if "number" in columns:
        rows = [(text, number) for number, text in enumerate(TRICKY_TEXT)]
    else:
        rows = [
            (text, other) for text, other in zip(TRICKY_TEXT, reversed(TRICKY_TEXT), strict=True)
        ]
    given = dialects.given_rows(session, columns, rows)
    read = (await session.execute(select(*given.values()))).all()
    assert sorted(map(tuple, read), key=repr) == sorted(rows, key=repr)
