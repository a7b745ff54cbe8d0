"""Errors as HTTP answers: RFC 9457 problem+json documents and the FastAPI handlers that write them.

The errors themselves (``AppError`` and its kinds) are in sms_sender.errors, which knows no web
framework; this module is the web layer's half.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from sms_sender.errors import PROBLEM_JSON, AppError

_log = structlog.get_logger(__name__)


def _documented(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# Declared on every /api/v1 route so the OpenAPI document tells clients what errors look like.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Bad request"),
    401: _documented("Missing, unknown or revoked bearer token"),
    404: _documented("No such resource"),
    409: _documented("The request conflicts with the current state"),
    415: _documented("Unsupported content type"),
    422: _documented("Invalid input: see `errors` for each field"),
}


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_ or f"/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_message(error: dict[str, Any]) -> str:
    # pydantic reports a naive input to an AwareDatetime field as "timezone_aware".
    if error.get("type") == "timezone_aware":
        return "datetime needs a UTC offset or Z, e.g. 2026-12-01T09:00:00+03:00"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def public_errors(errors: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The field errors as the API shows them: the values of a reason's text stay inside."""
    if errors is None:
        return None
    return [{key: value for key, value in item.items() if key != "values"} for item in errors]


def _allowed_methods(request: Request) -> list[str]:
    """The documented methods of the path; a fixed path such as ``/clients/opt-out`` wins over a
    template it also fits (``/clients/{client_id}``), as it does in the router."""
    path = request.url.path
    fitting = [
        (template.count("{"), operations)
        for template, operations in request.app.openapi()["paths"].items()
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path)
    ]
    if not fitting:
        return []
    _, operations = min(fitting, key=lambda fit: fit[0])
    return sorted(method.upper() for method in operations)


def _json_sent_as_something_else(request: Request, exc: RequestValidationError) -> bool:
    """A JSON route got a body declared as another type, so it could not even read it."""
    content_type = request.headers.get("content-type", "")
    if not content_type or "json" in content_type.lower():
        return False
    return any(tuple(error.get("loc", ())) == ("body",) for error in exc.errors())


# SQLSTATEs of "cancelled to resolve a collision with another transaction; nothing was kept":
# deadlock_detected, serialization_failure. Trying the same request again is the remedy.
COLLISION_STATES = frozenset({"40P01", "40001"})


def _sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE asyncpg gave the error, if any (SQLite's driver gives none)."""
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _problem_of(exc: AppError) -> JSONResponse:
    return problem(
        exc.status_code,
        exc.title,
        exc.detail,
        type_=exc.type,
        code=exc.code,
        errors=public_errors(exc.errors),
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return _problem_of(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if _json_sent_as_something_else(request, exc):
            return problem(
                415,
                "Unsupported media type",
                "send the body as JSON with 'Content-Type: application/json', "
                f"not {request.headers['content-type']!r}",
            )
        errors = [
            {
                "loc": list(error.get("loc", ())),
                "msg": _validation_message(error),
                "code": error.get("type"),
            }
            for error in exc.errors()
        ]
        summary = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in errors
        )
        return problem(
            422, "Invalid input", summary, type_="/problems/invalid-input", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # An AppError raised where FastAPI lets only HTTPExceptions through (a guard that runs
        # before the body is read: auth/token_first.py) travels inside one.
        refused = getattr(exc, "refused", None)
        if isinstance(refused, AppError):
            return _problem_of(refused)
        title = {
            401: "Unauthorized",
            404: "Not found",
            405: "Method not allowed",
            413: "Content too large",
        }.get(exc.status_code, "Error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; list them all.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem(exc.status_code, title, str(exc.detail), headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # Nobody reads this answer; the unit of work was rolled back, nothing was kept.
        _log.info("client disconnected before the request body was read", path=request.url.path)
        return problem(400, "Bad request", "the client disconnected during the request")

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
            # SQLite's single writer stayed busy past busy_timeout: load, not a bug.
            _log.warning("database busy", path=request.url.path)
            return problem(
                503,
                "Service unavailable",
                "the database is busy; try again in a moment",
                headers={"Retry-After": "1"},
            )
        if _sqlstate(exc) in COLLISION_STATES:
            # PostgreSQL cancelled this transaction to let a concurrent one go on (a deadlock's
            # victim, a serialization failure); the unit of work was rolled back whole.
            _log.warning("database collision", path=request.url.path, sqlstate=_sqlstate(exc))
            return problem(
                503,
                "Service unavailable",
                "the database had to cancel this change because it collided with another "
                "one; nothing was changed; try again",
                type_="/problems/write-collision",
                headers={"Retry-After": "1"},
            )
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error", path=request.url.path, error=repr(exc))
        return problem(500, "Internal error", "An unexpected error occurred; it has been logged.")
