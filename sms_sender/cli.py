"""The ``sms-sender`` command line (Typer): run the service, migrate, manage tokens, import."""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import prometheus_client
import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.app import create_app
from sms_sender.audit.actor import Actor, bind_actor
from sms_sender.audit.models import AuditSource
from sms_sender.auth import service as auth_service
from sms_sender.auth import users as auth_users
from sms_sender.auth.models import Role, User
from sms_sender.auth.oidc_access import OidcConfigurationError
from sms_sender.clients.csv_import import import_clients
from sms_sender.clients.schemas import ImportResult
from sms_sender.clock import SystemClock
from sms_sender.config import Settings, describe_errors
from sms_sender.consent.service import hasher_for
from sms_sender.db import Notifier, create_engine, create_sessionmaker
from sms_sender.demo import load_demo
from sms_sender.dialects import read_only
from sms_sender.dispatch.runtime import WORKER_ENGINE_OPTIONS, configured_engine
from sms_sender.errors import AppError
from sms_sender.logging import configure_logging
from sms_sender.migrations import upgrade_to_head
from sms_sender.notifications import render
from sms_sender.notifications import service as notifications_service
from sms_sender.notifications.mail import Mailer, MailError
from sms_sender.notifications.schemas import DailyReport
from sms_sender.text_lines import read_lines

app = typer.Typer(
    help="sms-sender: SMS mailings that start on time, stop at their end and never repeat.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(
    help="API tokens for the Authorization: Bearer header.", no_args_is_help=True
)
app.add_typer(token_app, name="token")
user_app = typer.Typer(help="People who sign in to the admin console.", no_args_is_help=True)
app.add_typer(user_app, name="user")
report_app = typer.Typer(
    help="The daily statistics e-mail (sent by itself at SMS_SENDER_REPORT_TIME).",
    no_args_is_help=True,
)
app.add_typer(report_app, name="report")

T = TypeVar("T")

_new_event_loop: Callable[[], asyncio.AbstractEventLoop]
try:  # libuv's event loop: about twice as fast for the engine's many small tasks and sockets
    from uvloop import new_event_loop as _new_event_loop
except ImportError:  # not built for this platform (Windows): asyncio's own loop
    _new_event_loop = asyncio.new_event_loop

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on the fastest event loop available here."""
    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        return runner.run(main)


def _settings() -> Settings:
    """The settings from the environment; bad ones stop the command with a sentence each."""
    try:
        settings = Settings()
    except ValidationError as error:
        for sentence in describe_errors(error):
            typer.echo(f"error: {sentence}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_format, settings.log_level, messages=settings.log_messages)
    return settings


def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work on a migrated database and commit it, audited as the OS user."""

    async def run() -> T:
        bind_actor(Actor(name=_os_user(), source=AuditSource.CLI))
        engine = create_engine(settings.database_url)
        try:
            await upgrade_to_head(engine)
            async with create_sessionmaker(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return run_event_loop(run())
    except AppError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except OSError:  # no user name in the environment or the password database
        return "cli"


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema to the newest version."""
    settings = _settings()

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    run_event_loop(run())
    typer.echo("database is at the newest schema")


@app.command()
def api(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Run the HTTP API only (scale it out; run workers with `sms-sender worker`)."""
    _serve_http(_settings(), host, port, with_engine=False)


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Run the API, the scheduler and a worker in one process: the simple set-up."""
    _serve_http(_settings(), host, port, with_engine=True)


def _serve_http(settings: Settings, host: str, port: int, *, with_engine: bool) -> None:
    try:  # before anything else, so bad console settings stop start-up with their sentence
        application = create_app(settings, with_delivery=with_engine)
    except OidcConfigurationError as bad:
        typer.echo(f"error: {bad}", err=True)
        raise typer.Exit(2) from None

    async def run() -> bool:
        engine = create_engine(settings.database_url)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()
        config = uvicorn.Config(application, host=host, port=port, log_config=None)
        server = uvicorn.Server(config)
        delivery_stopped: asyncio.Event = application.state.delivery_stopped

        async def exit_when_delivery_stops() -> None:
            await delivery_stopped.wait()
            server.should_exit = True

        watch = asyncio.create_task(exit_when_delivery_stops())
        try:
            await server.serve()
        finally:
            watch.cancel()
        return delivery_stopped.is_set()

    if run_event_loop(run()):
        raise typer.Exit(code=1)


@app.command()
def worker(
    metrics_host: Annotated[str, typer.Option(help="Address for /metrics.")] = "127.0.0.1",
    metrics_port: Annotated[
        int, typer.Option(help="Port for Prometheus /metrics, e.g. 9100; 0 (default): off.")
    ] = 0,
) -> None:
    """Run the scheduler and a worker without the API; start as many as needed on PostgreSQL.

    SIGTERM or Ctrl-C stops it gracefully: sends in flight are finished and recorded, claimed
    messages not yet sent are released for other workers.
    """
    settings = _settings()
    if metrics_port:
        prometheus_client.start_http_server(metrics_port, addr=metrics_host)

    async def run() -> None:
        engine = create_engine(settings.database_url, **WORKER_ENGINE_OPTIONS)
        try:
            await upgrade_to_head(engine)
            notifier = Notifier()
            sessionmaker = create_sessionmaker(engine, notifier)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(stop_signal, stop.set)
            async with configured_engine(
                settings, sessionmaker, notifier, SystemClock()
            ) as delivery:
                await delivery.run(stop)
        finally:
            await engine.dispose()

    run_event_loop(run())


@app.command("import")
def import_csv(
    path: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="CSV: phone,operator_code,tag,timezone"),
    ],
) -> None:
    """Import clients from a CSV file; bad rows are reported by line, good rows are kept."""
    settings = _settings()

    async def work(session: AsyncSession) -> ImportResult:
        with path.open("rb") as csv_file:
            return await import_clients(
                session,
                read_lines(csv_file),
                default_timezone=settings.default_timezone,
                hasher=await hasher_for(session, settings.suppression_key.get_secret_value()),
                now=SystemClock().now(),
            )

    result = _in_session(settings, work)
    for error in result.errors:
        typer.echo(f"line {error.line}: {error.error}", err=True)
    if result.errors_truncated:
        typer.echo(f"… and {result.failed - len(result.errors)} more bad rows", err=True)
    typer.echo(f"imported {result.imported} clients, {result.failed} rows rejected")


@app.command()
def demo() -> None:
    """Fill a demo directory, two messages and two mailings, to see the whole flow at once."""
    settings = _settings()

    async def work(session: AsyncSession) -> str:
        key = settings.suppression_key.get_secret_value()
        return await load_demo(session, SystemClock().now(), await hasher_for(session, key))

    summary = _in_session(settings, work)
    typer.echo(summary)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the token.")],
    audit: Annotated[
        bool, typer.Option("--audit", help="It may also read the audit log (GET /api/v1/audit).")
    ] = False,
) -> None:
    """Create a token; it is printed once, as the last line."""
    settings = _settings()
    token = _in_session(
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
    tokens = _in_session(_settings(), auth_service.list_tokens)
    for token in tokens:
        state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
        rights = "api, audit log" if token.reads_audit else "api"
        typer.echo(f"{token.name}\tcreated {token.created_at:%Y-%m-%d %H:%M}\t{state}\t{rights}")


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke a token by name; the API refuses it within SMS_SENDER_TOKEN_CACHE_SECONDS (1 s)."""
    _in_session(
        _settings(), lambda session: auth_service.revoke_token(session, name, SystemClock().now())
    )
    typer.echo(f"token {name!r} revoked")


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
    password = _read_password()
    _in_session(
        _settings(),
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

    async def every_user(session: AsyncSession) -> list[User]:
        found: list[User] = []
        while True:
            after_id = found[-1].id if found else 0
            batch = await auth_users.page(session, after_id=after_id, limit=500)
            found.extend(batch[:500])
            if len(batch) <= 500:
                return found

    for user in _in_session(_settings(), every_user):
        state = f"disabled {user.disabled_at:%Y-%m-%d %H:%M}" if user.disabled_at else "active"
        typer.echo(f"{user.name}\t{user.role}\t{user.auth_source}\t{state}")


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Disable a user: they cannot sign in and their open sessions end at once."""

    async def work(session: AsyncSession) -> None:
        user = await auth_users.by_name(session, name)
        await auth_users.disable(session, user, SystemClock().now())

    _in_session(_settings(), work)
    typer.echo(f"user {name!r} disabled; their sessions have ended")


ReportDate = Annotated[
    str | None,
    typer.Option(
        "--date",
        help="The day, YYYY-MM-DD, in SMS_SENDER_REPORT_TIMEZONE (default: yesterday there).",
    ),
]


def _daily_report(settings: Settings, day_text: str | None) -> DailyReport:
    now = SystemClock().now()
    if day_text is None:
        day = now.astimezone(settings.report_zone).date() - timedelta(days=1)
    else:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            typer.echo(f"error: --date {day_text!r} is not a day as YYYY-MM-DD", err=True)
            raise typer.Exit(2) from None

    async def run() -> DailyReport:
        engine = create_engine(settings.database_url)
        try:
            await upgrade_to_head(engine)
            async with read_only(engine).connect() as connection:
                return await notifications_service.build_daily_report(
                    connection, day, settings.report_zone, now
                )
        finally:
            await engine.dispose()

    return run_event_loop(run())


@report_app.command("show")
def report_show(day: ReportDate = None) -> None:
    """Print the daily report of a day (plain text), as it stands now."""
    settings = _settings()
    report = _daily_report(settings, day)
    typer.echo(render.daily_report(report, settings.public_url).text, nl=False)


@report_app.command("send")
def report_send(day: ReportDate = None) -> None:
    """E-mail the daily report of a day to SMS_SENDER_REPORT_TO now (once, no retries)."""
    settings = _settings()
    if not settings.report_to:
        typer.echo("error: SMS_SENDER_REPORT_TO is not set: nobody to send the report to", err=True)
        raise typer.Exit(1)
    report = _daily_report(settings, day)
    letter = render.daily_report(report, settings.public_url)
    mailer = Mailer(settings.smtp_server, settings.report_from, settings.smtp_timeout)
    try:
        run_event_loop(mailer.send(letter, settings.report_to, SystemClock().now()))
    except MailError as error:
        typer.echo(f"error: the report was not sent: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"sent the report of {report.day.isoformat()} to {', '.join(settings.report_to)}")
