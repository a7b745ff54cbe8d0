"""``sms-sender user create|list|disable``: people who sign in to the console.

Each command imports ``auth.users`` (and with it argon2, 1 MB) when it runs, not at the top:
every command's module is loaded to start any command, ``sms-sender worker`` included.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.auth.models import Role, User
from sms_sender.cli._common import in_session, settings_from_env
from sms_sender.clock import SystemClock

user_app = typer.Typer(help="People who sign in to the admin console.", no_args_is_help=True)


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="The name to sign in with.")],
    role: Annotated[
        Role,
        typer.Option(
            help="viewer reads; operator also writes; admin also manages users and tokens."
        ),
    ] = Role.VIEWER,
) -> None:
    """Create a console user; the password is asked for (or read from stdin when piped)."""
    from sms_sender.auth import users as auth_users

    password = _read_password()
    in_session(
        settings_from_env(),
        lambda session: auth_users.create_local(session, name, role, password, SystemClock().now()),
    )
    typer.echo(f"user {name!r} created with role {role}")


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("list")
def user_list() -> None:
    """List console users with their role, how they sign in and whether they are disabled."""
    from sms_sender.auth import users as auth_users

    async def every_user(session: AsyncSession) -> list[User]:
        found: list[User] = []
        while True:
            after_id = found[-1].id if found else 0
            batch = await auth_users.page(session, after_id=after_id, limit=500)
            found.extend(batch[:500])
            if len(batch) <= 500:
                return found

    for user in in_session(settings_from_env(), every_user):
        state = f"disabled {user.disabled_at:%Y-%m-%d %H:%M}" if user.disabled_at else "active"
        typer.echo(f"{user.name}\t{user.role}\t{user.auth_source}\t{state}")


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Disable a user: they cannot sign in and their open sessions end at once."""
    from sms_sender.auth import users as auth_users

    async def work(session: AsyncSession) -> None:
        user = await auth_users.by_name(session, name)
        await auth_users.disable(session, user, SystemClock().now())

    in_session(settings_from_env(), work)
    typer.echo(f"user {name!r} disabled; their sessions have ended")
