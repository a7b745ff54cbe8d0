"""create_app(): the FastAPI application; its lifespan owns the database engine."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sms_sender import __version__, metrics
from sms_sender.admin import install_console
from sms_sender.admin.clients import IMPORT_PATH as CONSOLE_IMPORT_PATH
from sms_sender.api_docs import install_api_docs
from sms_sender.audit.actor import SYSTEM, acting_as
from sms_sender.audit.endpoints import router as audit_router
from sms_sender.auth.endpoints import require_audit_token, require_token
from sms_sender.auth.service import RecentTokens
from sms_sender.auth.token_first import TokenBeforeBody
from sms_sender.clients.endpoints import IMPORT_PATH, IMPORT_SETTING, client_consent_router
from sms_sender.clients.endpoints import router as clients_router
from sms_sender.clock import Clock, SystemClock
from sms_sender.config import Settings
from sms_sender.consent.endpoints import STOP_LIST_PATH, inbound_router, inbound_secret
from sms_sender.consent.endpoints import router as consent_router
from sms_sender.db import Notifier, create_engine, create_sessionmaker
from sms_sender.dialects import read_only, turn_taken_at_begin
from sms_sender.dispatch import repository as dispatch_repository
from sms_sender.dispatch.child import EngineProcess
from sms_sender.dispatch.heartbeat import HeartbeatTuning, new_worker_id
from sms_sender.errors import Problem
from sms_sender.limits import BodyLimit, Limit
from sms_sender.mailings.endpoints import router as mailings_router
from sms_sender.mailings.endpoints import stats_router as mailing_stats_router
from sms_sender.messages.endpoints import router as messages_router
from sms_sender.problems import PROBLEM_RESPONSES, install_error_handlers, problem
from sms_sender.reports.endpoints import router as reports_router

_log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"

DESCRIPTION = """
Manage SMS mailings: a directory of clients, message texts, and mailings that send a message to
every client matching a filter between `start_at` and `end_at`, with a report per message.

Every `/api/v1` route needs `Authorization: Bearer <token>`
(create one with `sms-sender token create NAME`). Errors are `application/problem+json`.
"""


# The service reports through /metrics and its log lines. FastAPI's own OpenTelemetry bridge,
# on by default, asked OpenTelemetry for its three global providers on every request (10 µs of
# a 1 ms POST on a busy machine) only to find none configured.
NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db_engine: AsyncEngine | None = None,
    with_delivery: bool = False,
    engine_process: EngineProcess | None = None,
) -> FastAPI:
    """The API application; ``with_delivery`` runs the delivery engine in a child process.

    ``db_engine`` (SQLAlchemy's) lets tests share one database; otherwise the lifespan creates
    and disposes one. ``engine_process`` is that child when the caller started it already
    (``serve`` does, so that it imports while this process does); the lifespan stops it.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = db_engine or create_engine(settings.database_url)
        app.state.db_engine = database
        # The requests' units of work, each in its writer turn on SQLite (web.get_session).
        app.state.sessionmaker = create_sessionmaker(
            turn_taken_at_begin(database), app.state.notifier
        )
        app.state.read_sessionmaker = create_sessionmaker(read_only(database), app.state.notifier)
        try:
            if with_delivery:
                async with _delivery_beside(app, engine_process):
                    yield
            else:
                yield
        finally:
            if db_engine is None:
                await database.dispose()

    app = FastAPI(
        title="sms-sender",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by install_api_docs, from local files, optionally behind a token.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=NO_OPENTELEMETRY,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.notifier = Notifier()
    app.state.delivery_stopped = asyncio.Event()  # set if the engine beside the API dies
    app.state.engine_worker_id = None  # the heartbeat /readyz asks for, with_delivery only
    app.state.engine_metrics_dir = None  # where that engine keeps its metrics for /metrics
    app.state.recent_tokens = RecentTokens(timedelta(seconds=settings.token_cache_seconds))
    install_error_handlers(app)
    api_routers = (
        clients_router,
        client_consent_router,
        consent_router,
        messages_router,
        mailings_router,
        reports_router,
        mailing_stats_router,
        audit_router,
    )
    # Outermost last: the request id, then the body limits, then the token, then the routes.
    app.add_middleware(
        TokenBeforeBody,
        token_routes=[route for router in api_routers for route in router.routes],
        other_guards=[(route, inbound_secret) for route in inbound_router.routes],
    )
    app.add_middleware(
        BodyLimit,
        default=Limit(settings.max_body_bytes, "SMS_SENDER_MAX_BODY_BYTES"),
        larger={
            path: Limit(settings.max_import_bytes, IMPORT_SETTING)
            for path in (API_PREFIX + IMPORT_PATH, API_PREFIX + STOP_LIST_PATH, CONSOLE_IMPORT_PATH)
        },
    )
    app.add_middleware(RequestContextMiddleware)

    api = APIRouter(
        prefix=API_PREFIX, dependencies=[Depends(require_token)], responses=PROBLEM_RESPONSES
    )
    for router in api_routers:
        # The audit log tells who did what: only tokens made to read it (token create --audit).
        guards = [Depends(require_audit_token)] if router is audit_router else []
        api.include_router(router, dependencies=guards)
    app.include_router(api)
    # Gateways authenticate with a shared secret header, not a bearer token.
    app.include_router(inbound_router, prefix="/api/v1", responses=PROBLEM_RESPONSES)
    app.include_router(_operations_router())
    install_console(app, settings)
    install_api_docs(app, settings)
    _register_problem_schema(app)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Put ``Problem`` into components/schemas, where PROBLEM_RESPONSES refers to it."""
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build_schema()
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(problem_schema.pop("$defs", {}))
        components["Problem"] = problem_schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


@asynccontextmanager
async def _delivery_beside(app: FastAPI, engine: EngineProcess | None) -> AsyncIterator[None]:
    """The delivery engine in a child process (``sms-sender serve``), stopped with the API.

    Should the engine exit on its own (a bug, kill -9), ``app.state.delivery_stopped`` is set:
    /readyz fails from then on and ``serve`` stops and exits non-zero. An API that answers
    while nothing is sent would hide the failure from whoever watches the process.
    """
    state = app.state
    if engine is None:
        engine = EngineProcess(new_worker_id())
        await engine.start()
    engine.forward_wake_ups(state.notifier)
    state.engine_worker_id = engine.worker_id
    state.engine_metrics_dir = engine.metrics_dir
    stopping = False

    async def watch() -> None:
        code = await engine.exited()
        if not stopping:
            _log.critical(
                "the delivery engine process exited; nothing is sent, the API stops",
                pid=engine.pid,
                exit_code=code,
            )
            state.delivery_stopped.set()

    watcher = asyncio.create_task(watch(), name="watch-delivery-engine")
    try:
        yield
    finally:
        stopping = True  # from here on, its exit is ours
        code = await engine.stop()
        await watcher
        _log.info("delivery engine process stopped", exit_code=code)


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the database answers (serve: and the delivery engine beats)",
        response_model=None,
    )
    async def readyz(request: Request) -> dict[str, str] | JSONResponse:
        state = request.app.state
        if state.delivery_stopped.is_set():
            return problem(503, "Not ready", "the delivery engine stopped: nothing is being sent")
        try:
            async with read_only(state.db_engine).connect() as connection:
                await connection.execute(text("SELECT 1"))
                beat_at = (
                    await dispatch_repository.last_seen(connection, state.engine_worker_id)
                    if state.engine_worker_id is not None
                    else None
                )
        except Exception as exc:  # any failure to reach the database means "not ready"
            _log.warning("database not reachable", error=repr(exc))
            return problem(503, "Not ready", "the database is not reachable")
        if state.engine_worker_id is not None:
            silent = _engine_silence(beat_at, state.clock.now())
            if silent is not None:
                return problem(503, "Not ready", silent)
        return {"status": "ready"}

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics(request: Request) -> Response:
        engine_metrics_dir = request.app.state.engine_metrics_dir
        return Response(metrics.exposition(engine_metrics_dir), media_type=CONTENT_TYPE_LATEST)

    return router


def _engine_silence(beat_at: datetime | None, now: datetime) -> str | None:
    """Why the engine beside the API does not count as running, or None if its beat is fresh."""
    if beat_at is None:
        return "the delivery engine has not started yet"
    silent_for = (now - beat_at).total_seconds()
    if silent_for > HeartbeatTuning().dead_after:
        return f"the delivery engine has not beaten for {silent_for:.0f} s"
    return None


class RequestContextMiddleware:
    """Gives each request an id (X-Request-ID) and its own actor; logs and counts it by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Each (method, route, status)'s children of the two metrics: ``labels()`` looks them
        # up under a lock each time. As many as the metrics' own series.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            # Whoever the request authenticates as acts until it ends, and no longer.
            with acting_as(SYSTEM):
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            requests, latency = self._metrics_of(scope["method"], _route_template(scope), status)
            requests.inc()
            latency.observe(elapsed)
            _log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    def _metrics_of(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter's and the latency histogram's series for this request."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                metrics.HTTP_REQUESTS.labels(method, route, str(status)),
                metrics.HTTP_LATENCY.labels(method, route),
            )
        return series


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID (its first 64 characters) if it is visible ASCII, else a new one.

    Anything else (non-UTF-8 bytes, control characters, spaces) is replaced, not trusted: the
    id is echoed in a header and written on every log line of the request.
    """
    header: bytes
    for name, header in scope["headers"]:
        if name == b"x-request-id":
            if _VISIBLE_ASCII.fullmatch(header):
                return header[:64].decode("ascii")
            break
    return uuid.uuid4().hex


_VISIBLE_ASCII = re.compile(rb"[!-~]+")


def _route_template(scope: dict[str, Any] | Scope) -> str:
    route = scope.get("route")
    # Unmatched paths share one label so a scanner cannot blow up the metric's cardinality.
    return getattr(route, "path", "<unmatched>")
