"""Errors a person can act on, rendered as RFC 9457 problem+json.

    AppError (400)
    ├── InvalidInput (422)      a value breaks a rule the schema cannot express
    ├── Unauthorized (401)      missing, unknown or revoked bearer token; no console session
    ├── Forbidden (403)         signed in, but the role does not allow it (or no CSRF token)
    ├── NotFound (404)          no such client, message, mailing or report
    ├── Conflict (409)          the request fights the current state (duplicate phone,
    │                           editing a running mailing, deleting a message in use)
    ├── UnsupportedMediaType (415)  a body in a format the route does not read
    └── RequestTimeout (408)    an upload stalled past its read timeout

Services raise these; ``sms_sender.problems.install_error_handlers`` turns them, FastAPI's
validation errors and any unexpected exception (always a bug: 500) into problem documents. This
module imports no web framework, so the delivery engine may raise and catch these too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

PROBLEM_JSON = "application/problem+json"


def shown(value: str, limit: int = 40) -> str:
    """The value quoted for an error message, cut short so a huge input makes a short message."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


class AppError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    @property
    def type(self) -> str:
        return f"/problems/{self.title.lower().replace(' ', '-')}"


class InvalidInput(AppError):
    status_code = 422
    title = "Invalid input"

    @classmethod
    def field(cls, loc: list[str | int], msg: str) -> InvalidInput:
        """A validation error on one field, shaped like FastAPI's own."""
        return cls(msg, errors=[{"loc": loc, "msg": msg}])


class Unauthorized(AppError):
    status_code = 401
    title = "Unauthorized"


class Forbidden(AppError):
    status_code = 403
    title = "Forbidden"


class NotFound(AppError):
    status_code = 404
    title = "Not found"


class Conflict(AppError):
    status_code = 409
    title = "Conflict"


class UnsupportedMediaType(AppError):
    status_code = 415
    title = "Unsupported media type"


class RequestTimeout(AppError):
    status_code = 408
    title = "Request timeout"


class FieldError(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "phone"]])
    msg: str = Field(examples=["phone must be 11 digits starting with 7, e.g. 79161234567"])


class Problem(BaseModel):
    """An RFC 9457 problem document: what went wrong and what to do about it."""

    type: str = Field(examples=["/problems/invalid-input"])
    title: str = Field(examples=["Invalid input"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["body.phone: phone must be 11 digits starting with 7"])
    errors: list[FieldError] | None = Field(
        default=None, description="For invalid input: each offending field and why."
    )
