"""Running the service: ``migrate``, ``api``, ``serve`` (API and delivery engine) and ``worker``."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import prometheus_client
import typer

from sms_sender.auth.oidc_access import OidcConfigurationError
from sms_sender.cli._common import Host, Port, run_event_loop, settings_from_env
from sms_sender.clock import SystemClock
from sms_sender.config import Settings
from sms_sender.db import Notifier, create_engine, create_sessionmaker
from sms_sender.dispatch.child import EngineProcess, follow_api
from sms_sender.dispatch.heartbeat import new_worker_id
from sms_sender.dispatch.runtime import WORKER_DATABASE_OPTIONS, delivery_engine
from sms_sender.migrations import upgrade_to_head


def migrate() -> None:
    """Create or upgrade the database schema to the newest version."""
    settings = settings_from_env()

    async def run() -> None:
        database = create_engine(settings.database_url)
        try:
            await upgrade_to_head(database)
        finally:
            await database.dispose()

    run_event_loop(run())
    typer.echo("database is at the newest schema")


def api(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Run the HTTP API only (scale it out; run workers with `sms-sender worker`)."""
    _serve_http(settings_from_env(), host, port, with_delivery=False)


def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Run the API, and the scheduler and a worker in a child process: the simple set-up.

    The two stop together: SIGTERM or Ctrl-C stops both gracefully; should either die, the
    other stops too and serve exits non-zero.
    """
    _serve_http(settings_from_env(), host, port, with_delivery=True)


def _serve_http(settings: Settings, host: str, port: int, *, with_delivery: bool) -> None:
    async def run() -> bool:
        # serve: the engine's process first, so that it imports while this one does (a restart
        # then waits for the slower of the two, not for one after the other). Its migration
        # check waits for this one's, or this one's for its: the migration lock (SQLite: the
        # write lock) takes them in turn.
        engine = EngineProcess(new_worker_id()) if with_delivery else None
        if engine is not None:
            await engine.start()
        try:
            return await _serve_application(settings, host, port, engine)
        finally:
            if engine is not None:
                await engine.stop()  # already stopped by the lifespan, unless start-up failed

    if run_event_loop(run()):
        raise typer.Exit(code=1)


async def _serve_application(
    settings: Settings, host: str, port: int, engine: EngineProcess | None
) -> bool:
    """Serve HTTP until stopped; True if it stopped because the delivery engine did."""
    # Imported here, not at the top, for memory, not for a cycle: the web application (FastAPI,
    # the console, its templates and OIDC) and uvicorn are about 22 MB of a process, and
    # `sms-sender worker` (or any other command) never serves them. tests/test_cli.py checks it.
    import uvicorn

    from sms_sender.app import create_app

    try:  # before anything else, so bad console settings stop start-up with their sentence
        application = create_app(settings, with_delivery=engine is not None, engine_process=engine)
    except OidcConfigurationError as bad:
        typer.echo(f"error: {bad}", err=True)
        raise typer.Exit(2) from None

    database = create_engine(settings.database_url)
    try:
        await upgrade_to_head(database)
    finally:
        await database.dispose()
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


def worker(
    metrics_host: Annotated[str, typer.Option(help="Address for /metrics.")] = "127.0.0.1",
    metrics_port: Annotated[
        int, typer.Option(help="Port for Prometheus /metrics, e.g. 9100; 0 (default): off.")
    ] = 0,
    beside_api: Annotated[
        bool,
        typer.Option(hidden=True, help="Started by serve: wake-ups on stdin, stop at its end."),
    ] = False,
    worker_id: Annotated[
        str | None, typer.Option(hidden=True, help="The id serve's /readyz looks for.")
    ] = None,
) -> None:
    """Run the scheduler and a worker without the API; start as many as needed on PostgreSQL.

    SIGTERM or Ctrl-C stops it gracefully: sends in flight are finished and recorded, claimed
    messages not yet sent are released for other workers.
    """
    settings = settings_from_env()
    if metrics_port:
        prometheus_client.start_http_server(metrics_port, addr=metrics_host)

    async def run() -> None:
        database = create_engine(settings.database_url, **WORKER_DATABASE_OPTIONS)
        try:
            await upgrade_to_head(database)
            notifier = Notifier()
            sessionmaker = create_sessionmaker(database, notifier)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(stop_signal, stop.set)
            async with delivery_engine(
                settings, sessionmaker, notifier, SystemClock(), worker_id=worker_id
            ) as delivery:
                if not beside_api:
                    await delivery.run(stop)
                    return
                api = asyncio.create_task(follow_api(notifier, stop), name="follow-api")
                try:
                    await delivery.run(stop)
                finally:
                    api.cancel()
        finally:
            await database.dispose()

    run_event_loop(run())
