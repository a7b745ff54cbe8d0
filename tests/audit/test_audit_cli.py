"""The command line's changes are audited as the operating-system user, source ``cli``."""

from __future__ import annotations

import asyncio
import getpass

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.cli import app
from sms_sender.models import AuditEntry
from tests.test_cli import Cli, cli  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_token_create_and_revoke_from_the_cli_are_audited(
    cli: Cli,  # noqa: F811
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    assert (await cli("token", "create", "ops")).exit_code == 0
    assert (await cli("token", "revoke", "ops")).exit_code == 0
    assert (await cli("token", "revoke", "ops")).exit_code == 1  # nothing left: no entry
    async with sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [(e.action, e.target, e.detail, e.source) for e in entries] == [
        ("created", "token", "ops", "cli"),
        ("revoked", "token", "ops", "cli"),
    ]
    assert {e.actor for e in entries} == {getpass.getuser()}
    assert entries[0].target_id == entries[1].target_id


async def test_user_create_and_disable_from_the_cli_are_audited(
    cli: Cli,  # noqa: F811
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    created = await asyncio.to_thread(
        cli.runner.invoke,
        app,
        ["user", "create", "olga", "--role", "operator"],
        "a long password\n",
    )
    assert created.exit_code == 0, created.output
    assert (await cli("user", "disable", "olga")).exit_code == 0
    async with sessionmaker() as session:
        query = select(AuditEntry).where(AuditEntry.target == "user").order_by(AuditEntry.id)
        entries = (await session.scalars(query)).all()
    assert [(e.action, e.detail, e.source) for e in entries] == [
        ("created", "olga (operator)", "cli"),
        ("disabled", "olga", "cli"),
    ]
