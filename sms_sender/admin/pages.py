"""Rendering console pages: templates, the page's language, and errors a person can act on.

Every console route uses :class:`ConsoleRoute`, which turns the services' errors into what the
asker can use: a page with the message for a browser, problem+json for the pages' own fetch
calls, and a trip to the sign-in page when the session has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from sms_sender.admin.i18n import Language, language_of, say_error, say_recorded, translator
from sms_sender.auth.models import Role
from sms_sender.errors import AppError
from sms_sender.mailings.models import MailingStatus
from sms_sender.problems import problem
from sms_sender.reports.models import ReportStatus

PREFIX = "/admin"
# Every status a page's script may show, named in the page's language (base.html).
STATUS_NAMES = sorted({*ReportStatus, *MailingStatus})
_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def with_query(request: Request, path_: str | None = None, **changes: object) -> str:
    """This page's URL with some query parameters changed (None removes one).

    ``path_``: the page's path when the request is for a part of it (a fragment of the page).
    """
    path = path_ or request.url.path
    kept = [(key, value) for key, value in request.query_params.multi_items() if key not in changes]
    query = [*kept, *((key, str(value)) for key, value in changes.items() if value is not None)]
    return f"{path}?{urlencode(query)}" if query else path


_environment.globals["with_query"] = with_query


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """The page ``template`` in the asker's language, with the signed-in user and CSRF token."""
    language = language_of(request)
    state = request.state
    zone = zone_of(request)
    page = _environment.get_template(template).render(
        request=request,
        lang=language,
        _=translator(language),
        user=getattr(state, "user", None),
        csrf_token=getattr(state, "csrf_token", ""),
        Role=Role,
        zone=zone,
        status_names=STATUS_NAMES,
        when=lambda moment: local_time(moment, zone),
        recorded=lambda text: say_recorded(language, text),
        **(context or {}),
    )
    return HTMLResponse(
        page,
        status_code=status_code,
        headers={"Cache-Control": "no-store", "Content-Language": language.value},
    )


ZONE_COOKIE = "sms_sender_tz"


def zone_of(request: Request) -> str:
    """The operator's time zone: the browser's (a cookie our script sets), else the default."""
    chosen = unquote(request.cookies.get(ZONE_COOKIE, ""))  # the script percent-encodes it
    if chosen and is_zone(chosen):
        return chosen
    default: str = request.app.state.settings.default_timezone
    return default


def is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return False
    return "/" in name or name == "UTC"


def local_time(moment: datetime | None, zone: str = "UTC") -> str:
    """A moment as the operator reads it: local time with the zone named."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def field_errors(error: AppError, request: Request) -> dict[str, str]:
    """Messages by field name, in the reader's language, to show beside each field of a form."""
    language = language_of(request)
    errors: dict[str, str] = {}
    for item in error.errors or []:
        loc = [str(part) for part in item["loc"] if part != "body"]
        message = say_error(language, item.get("code"), item.get("values", {}), str(item["msg"]))
        errors.setdefault(loc[0] if loc else "", message)
    return errors


def error_text(error: AppError, request: Request) -> str:
    """The error's detail in the reader's language (each field's message, for a form's)."""
    language = language_of(request)
    if error.code is None and error.errors:
        return "; ".join(
            f"{'.'.join(str(part) for part in item['loc'] if part != 'body') or '-'}: "
            + say_error(language, item.get("code"), item.get("values", {}), str(item["msg"]))
            for item in error.errors
        )
    return say_error(language, error.code, error.values, error.detail)


def error_page(request: Request, error: AppError) -> Response:
    if error.status_code == 401 and (wants_html(request) or request.method == "GET"):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
    if wants_html(request):
        context = {"error": error, "message": error_text(error, request)}
        return render(request, "error.html", context, status_code=error.status_code)
    # The pages' own scripts show ``detail`` and each field's ``msg``: in the reader's language.
    language = language_of(request)
    errors = [
        {
            "loc": item["loc"],
            "msg": say_error(language, item.get("code"), item.get("values", {}), str(item["msg"])),
            "code": item.get("code"),
        }
        for item in error.errors or []
    ]
    return problem(
        error.status_code,
        error.title,
        error_text(error, request),
        code=error.code,
        errors=errors or None,
    )


class ConsoleRoute(APIRoute):
    """A route whose AppErrors become a page (browser), problem+json (fetch) or a sign-in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as error:
                return error_page(request, error)

        return answer


__all__ = [
    "PREFIX",
    "ConsoleRoute",
    "Language",
    "error_text",
    "field_errors",
    "render",
    "wants_html",
]
