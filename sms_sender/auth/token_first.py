"""The bearer token is checked before the request body is read.

FastAPI reads and parses a route's body before it runs the route's dependencies, so with
``require_token`` alone an anonymous client could make the service read and parse whatever it
sent (issue 11: 20 MB of JSON, 500 MB of memory, then a 401). This middleware hands the app a
``receive`` that, the first time the app asks for the body of a request to a token route,
checks the token first: an anonymous or revoked caller gets its 401 before a byte is read.
The dependency then finds the check done and skips it. A request whose body is never read (a
GET) costs nothing more than before.

Routes authenticated otherwise (the inbound webhook's shared secret) give their own check in
``other_guards``; it runs at the same moment, so they too refuse before reading a byte.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from fastapi.security.utils import get_authorization_scheme_param
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sms_sender.auth.endpoints import TOKEN_CHECKED, check_token
from sms_sender.errors import AppError

# A route's own check of who is calling, from the request's headers alone; raises an AppError.
Guard = Callable[[Request], Awaitable[None]]


class RefusedBeforeBody(HTTPException):
    """A guard's refusal, as an HTTPException: FastAPI passes those on while reading a body."""

    def __init__(self, refused: AppError) -> None:
        super().__init__(refused.status_code, refused.detail)
        self.refused = refused  # answered as itself: its title and reason code


class TokenBeforeBody:
    """Pure ASGI middleware for the routes in ``token_routes`` (those behind require_token)
    and those in ``other_guards`` (each with its own check)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token_routes: Collection[BaseRoute],
        other_guards: Collection[tuple[BaseRoute, Guard]] = (),
    ) -> None:
        self.app = app
        # By identity: routes compare by value, and are module-level objects that stay put.
        self._token_route_ids = frozenset(id(route) for route in token_routes)
        self._other_guards = {id(route): guard for route, guard in other_guards}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def receive_after_token() -> Message:
            # The router has put the matched route in the scope by the time a body is read.
            route_id = id(scope.get("route"))
            try:
                if route_id in self._token_route_ids and TOKEN_CHECKED not in scope:
                    scope[TOKEN_CHECKED] = await check_token(
                        scope["app"].state, _bearer_token(scope)
                    )
                elif (guard := self._other_guards.get(route_id)) is not None:
                    await guard(Request(scope))
            except AppError as refused:
                raise RefusedBeforeBody(refused) from None
            return await receive()

        await self.app(scope, receive_after_token, send)


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
            return credentials if scheme.lower() == "bearer" and credentials else None
    return None
