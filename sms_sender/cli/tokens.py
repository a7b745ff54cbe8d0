"""``sms-sender token create|list|revoke``: API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from sms_sender.auth import service as auth_service
from sms_sender.cli._common import in_session, settings_from_env
from sms_sender.clock import SystemClock

token_app = typer.Typer(
    help="API tokens for the Authorization: Bearer header.", no_args_is_help=True
)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the token.")],
    audit: Annotated[
        bool, typer.Option("--audit", help="It may also read the audit log (GET /api/v1/audit).")
    ] = False,
) -> None:
    """Create a token; it is printed once, as the last line."""
    settings = settings_from_env()
    token = in_session(
        settings,
        lambda session: auth_service.create_token(
            session, name, SystemClock().now(), reads_audit=audit
        ),
    )
    typer.echo(f"token {name!r} created; keep it secret, it is not shown again:")
    typer.echo(token)


@token_app.command("list")
def token_list() -> None:
    """List tokens (names and dates; the tokens themselves are not stored)."""
    tokens = in_session(settings_from_env(), auth_service.list_tokens)
    for token in tokens:
        state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
        rights = "api, audit log" if token.reads_audit else "api"
        typer.echo(f"{token.name}\tcreated {token.created_at:%Y-%m-%d %H:%M}\t{state}\t{rights}")


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke a token by name; the API refuses it within SMS_SENDER_TOKEN_CACHE_SECONDS (1 s)."""
    in_session(
        settings_from_env(),
        lambda session: auth_service.revoke_token(session, name, SystemClock().now()),
    )
    typer.echo(f"token {name!r} revoked")
