"""Admins only: API tokens (created and shown once, revoked) and console users."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sms_sender import reasons
from sms_sender.admin.forms import cursor_of, form_of, next_cursor_of
from sms_sender.admin.pages import PREFIX, ConsoleRoute, error_text, field_errors, render
from sms_sender.auth import service as tokens
from sms_sender.auth import users
from sms_sender.auth.endpoints import Admin
from sms_sender.auth.models import Role
from sms_sender.errors import AppError, InvalidInput
from sms_sender.pagination import DEFAULT_LIMIT
from sms_sender.web import ClockDep, ReadSessionDep, SessionDep

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/tokens", response_class=HTMLResponse)
async def list_tokens(request: Request, user: Admin, session: ReadSessionDep) -> Response:
    context: dict[str, object] = {
        "tokens": await tokens.list_tokens(session),
        "created": None,
        "name": "",
        "reads_audit": False,
        "errors": {},
    }
    return render(request, "tokens.html", context)


@router.post("/tokens", response_class=HTMLResponse)
async def create_token(
    request: Request, user: Admin, session: SessionDep, clock: ClockDep
) -> Response:
    """The new token is in this one answer only; the database keeps its hash."""
    values = await form_of(request)
    name = str(values.get("name", "")).strip()
    reads_audit = values.get("reads_audit") == "on"
    context: dict[str, object] = {
        "created": None,
        "name": name,
        "reads_audit": reads_audit,
        "errors": {},
    }
    try:
        if not name or len(name) > 100:
            raise InvalidInput.field(["name"], reasons.TOKEN_NAME)
        context["created"] = await tokens.create_token(
            session, name, clock.now(), reads_audit=reads_audit
        )
        status = 201
    except AppError as error:
        await session.rollback()
        context["errors"] = field_errors(error, request) or {"name": error_text(error, request)}
        if error.status_code == 409:
            context["errors"] = {"name": error_text(error, request)}
        status = error.status_code
    context["tokens"] = await tokens.list_tokens(session)
    return render(request, "tokens.html", context, status_code=status)


@router.post("/tokens/{name}/revoke")
async def revoke_token(name: str, user: Admin, session: SessionDep, clock: ClockDep) -> Response:
    await tokens.revoke_token(session, name, clock.now())
    return RedirectResponse(f"{PREFIX}/tokens?revoked=1", status_code=303)


@router.get("/users", response_class=HTMLResponse)
async def list_users(request: Request, user: Admin, session: ReadSessionDep) -> Response:
    return await _users_page(request, session, {}, {})


@router.post("/users", response_class=HTMLResponse)
async def create_user(
    request: Request, user: Admin, session: SessionDep, clock: ClockDep
) -> Response:
    values = await form_of(request)
    try:
        role = _role(values.get("role", ""))
        await users.create_local(
            session, str(values.get("name", "")), role, str(values.get("password", "")), clock.now()
        )
    except AppError as error:
        await session.rollback()
        errors = field_errors(error, request) or {"name": error_text(error, request)}
        return await _users_page(request, session, values, errors, error.status_code)
    return RedirectResponse(f"{PREFIX}/users?created=1", status_code=303)


@router.post("/users/{user_id}/{action}")
async def change_user(
    user_id: int, action: str, user: Admin, session: SessionDep, clock: ClockDep, request: Request
) -> Response:
    target = await users.get(session, user_id)
    if target.id == user.id and action != "enable":
        raise InvalidInput.because(reasons.USER_SELF_CHANGE)
    if action == "disable":
        await users.disable(session, target, clock.now())
    elif action == "enable":
        await users.enable(session, target)
    elif action == "role":
        await users.change_role(session, target, _role((await form_of(request)).get("role", "")))
    else:
        raise InvalidInput.because(reasons.USER_ACTION_UNKNOWN, action=action)
    return RedirectResponse(f"{PREFIX}/users?changed={target.id}", status_code=303)


def _role(value: object) -> Role:
    if value not in set(Role):
        raise InvalidInput.field(["role"], reasons.USER_ROLE)
    return Role(str(value))


async def _users_page(
    request: Request,
    session: object,
    values: dict[str, object],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    found = await users.page(session, after_id=cursor_of(request), limit=DEFAULT_LIMIT)  # type: ignore[arg-type]
    return render(
        request,
        "users.html",
        {
            "people": found[:DEFAULT_LIMIT],
            "next_cursor": next_cursor_of([person.id for person in found]),
            "values": values,
            "errors": errors,
            "roles": list(Role),
        },
        status_code=status,
    )
