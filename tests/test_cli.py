"""The command line, run as a user would, on both databases."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner, Result

from sms_sender.auth.service import hash_token
from sms_sender.cli import app
from sms_sender.models import ApiToken, Client, Mailing

pytestmark = pytest.mark.usefixtures("clean_db")


class Cli:
    """Runs the CLI in a thread: each command starts its own event loop, as from a shell."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    async def __call__(self, *args: str) -> Result:
        return await asyncio.to_thread(self.runner.invoke, app, list(args))


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("SMS_SENDER_DATABASE_URL", database_url)
    monkeypatch.setenv("SMS_SENDER_LOG_LEVEL", "WARNING")
    return Cli()


async def test_token_create_prints_the_token_last_and_stores_its_hash(
    cli: Cli, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    result = await cli("token", "create", "ops")
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    async with sessionmaker() as session:
        stored = await session.scalar(select(ApiToken.token_hash).where(ApiToken.name == "ops"))
    assert stored == hash_token(token)

    listed = await cli("token", "list")
    assert "ops" in listed.output
    assert token not in listed.output
    assert (await cli("token", "revoke", "ops")).exit_code == 0
    assert "revoked" in (await cli("token", "list")).output


async def test_only_a_token_created_with_audit_reads_the_audit_log(
    cli: Cli, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert (await cli("token", "create", "crm")).exit_code == 0
    assert (await cli("token", "create", "siem", "--audit")).exit_code == 0
    async with sessionmaker() as session:
        rights = dict((await session.execute(select(ApiToken.name, ApiToken.reads_audit))).all())
    assert rights == {"crm": False, "siem": True}
    listed = (await cli("token", "list")).output.splitlines()
    assert [line.rsplit("\t", 1)[-1] for line in listed] == ["api", "api, audit log"]


async def test_duplicate_token_name_fails_with_a_reason(cli: Cli) -> None:
    assert (await cli("token", "create", "ops")).exit_code == 0
    again = await cli("token", "create", "ops")
    assert again.exit_code != 0
    assert "exists already" in again.output


async def test_import_keeps_good_rows_and_names_bad_lines(
    cli: Cli, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text(
        "phone,operator_code,tag,timezone\n79160000001,,vip,Europe/Moscow\nnot-a-phone,,,\n"
    )
    result = await cli("import", str(csv_file))
    assert result.exit_code == 0, result.output
    assert "imported 1 clients, 1 rows rejected" in result.output
    assert "line 3:" in result.output
    async with sessionmaker() as session:
        assert await session.scalar(select(Client.phone)) == "79160000001"


async def test_import_reads_a_file_larger_than_one_chunk(
    cli: Cli, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    rows = [f"7916{number:07d},,t,UTC" for number in range(6000)]  # 130 KiB: three chunks
    rows[-1] = "bad,,,"
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text("\n".join(["phone,operator_code,tag,timezone", *rows]))
    result = await cli("import", str(csv_file))
    assert result.exit_code == 0, result.output
    assert "imported 5999 clients, 1 rows rejected" in result.output
    assert "line 6001:" in result.output
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Client)) == 5999


async def test_demo_loads_clients_and_mailings(
    cli: Cli, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    result = await cli("demo")
    assert result.exit_code == 0, result.output
    assert "30 clients imported" in result.output
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Client)) == 30
        statuses = set((await session.scalars(select(Mailing.status))).all())
    assert statuses == {"running", "scheduled"}


async def test_user_create_list_disable(
    cli: Cli, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await asyncio.to_thread(
        cli.runner.invoke, app, ["user", "create", "olga", "--role", "admin"], "a long password\n"
    )
    assert created.exit_code == 0, created.output
    short = await asyncio.to_thread(cli.runner.invoke, app, ["user", "create", "ivan"], "short\n")
    assert short.exit_code == 1
    assert "at least 10 characters" in short.output
    listed = await cli("user", "list")
    assert "olga\tadmin\tlocal\tactive" in listed.output
    assert (await cli("user", "disable", "olga")).exit_code == 0
    assert "olga\tadmin\tlocal\tdisabled" in (await cli("user", "list")).output
    missing = await cli("user", "disable", "nobody")
    assert missing.exit_code == 1
    assert "no user named 'nobody'" in missing.output


# What the command line must not import for `sms-sender worker`, which needs none of it: the
# web application (FastAPI, the console, OIDC: about 21 MB), the HTTP server, alembic (7 MB; it
# comes only when a migration runs), argon2 (console passwords) and the CSV importer; asyncpg
# (3 MB) is loaded by SQLAlchemy and the LISTEN connection on PostgreSQL only; the notification
# loop's wires (httpx, jinja2, aiosmtplib: 5 MB) only when someone is to hear.
LEFT_TO_THEIR_COMMANDS = (
    "sms_sender.app",
    "fastapi",
    "authlib",
    "uvicorn",
    "alembic",
    "mako",
    "argon2",
    "sms_sender.auth.users",
    "sms_sender.clients.csv_import",
    "asyncpg",
    "sms_sender.notifications.loop",
    "httpx",
    "jinja2",
    "aiosmtplib",
)


def test_the_command_line_does_not_load_what_only_other_commands_use() -> None:
    """`sms-sender worker` keeps the web application, alembic and argon2 out of its memory."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, sms_sender.cli\n"
            f"print([name for name in {LEFT_TO_THEIR_COMMANDS!r} if name in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
