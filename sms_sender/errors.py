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

An error raised ``because`` of a :class:`Reason` (the catalogue is sms_sender/reasons.py)
carries the reason's stable ``code`` and the values of its text: the API answers in English
with the code beside it, and the console translates by the code (sms_sender/admin/i18n.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, Field
from pydantic_core import PydanticCustomError

PROBLEM_JSON = "application/problem+json"


def shown(value: str, limit: int = 40) -> str:
    """The value quoted for an error message, cut short so a huge input makes a short message."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


@dataclass(frozen=True)
class Reason:
    """Why something was refused: a stable code and the English text, with ``{name}`` slots."""

    code: str
    text: str

    def say(self, **values: Any) -> str:
        return self.text.format(**values)

    def invalid(self, **values: Any) -> PydanticCustomError:
        """For a schema's validator to raise: pydantic reports ``code`` as the error's type."""
        return PydanticCustomError(self.code, self.text, values)


class AppError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        code: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.code = code
        self.values = values or {}

    @classmethod
    def because(cls, reason: Reason, /, **values: Any) -> Self:
        """The error with the reason's text (in English), code and values."""
        return cls(reason.say(**values), code=reason.code, values=values)

    @property
    def type(self) -> str:
        return f"/problems/{self.title.lower().replace(' ', '-')}"


class InvalidInput(AppError):
    status_code = 422
    title = "Invalid input"

    @classmethod
    def field(cls, loc: list[str | int], msg: str | Reason, **values: Any) -> InvalidInput:
        """A validation error on one field, shaped like FastAPI's own."""
        if isinstance(msg, str):
            return cls(msg, errors=[{"loc": loc, "msg": msg}])
        text = msg.say(**values)
        item = {"loc": loc, "msg": text, "code": msg.code, "values": values}
        return cls(text, errors=[item], code=msg.code, values=values)


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
    code: str | None = Field(
        default=None,
        description="What is wrong, as a stable code: ours, or pydantic's error type.",
        examples=["phone_format"],
    )


class Problem(BaseModel):
    """An RFC 9457 problem document: what went wrong and what to do about it."""

    type: str = Field(examples=["/problems/invalid-input"])
    title: str = Field(examples=["Invalid input"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["body.phone: phone must be 11 digits starting with 7"])
    code: str | None = Field(
        default=None,
        description="Why, as a stable code a program may test instead of the text.",
        examples=["mailing_not_editable"],
    )
    errors: list[FieldError] | None = Field(
        default=None, description="For invalid input: each offending field and why."
    )
