"""The API's documentation, served by this process alone: Swagger UI and the OpenAPI document.

FastAPI's default pages load Swagger UI (and ReDoc) from a CDN, which an offline or
locked-down network cannot reach and which a page holding a bearer token should not trust.
Swagger UI 5 is served from the ``fastapi-offline`` package's files under ``/docs/static`` (only
its files: the app is ours);
ReDoc is not served (one viewer is enough); Swagger UI's validator badge, which sends the
document's address to validator.swagger.io, is off.

Both are open by default, like /healthz and /metrics. ``SMS_SENDER_DOCS_REQUIRE_TOKEN=true``
puts them behind authentication: a bearer token (scripts, code generators), or a signed-in
console session, since a browser cannot send a bearer header when it opens /docs: sign in at
/admin, then open /docs in the same browser.
"""

from __future__ import annotations

import importlib.resources
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.staticfiles import StaticFiles

from sms_sender.auth.endpoints import bearer, current_user, require_token
from sms_sender.config import Settings

DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
STATIC_PATH = "/docs/static"
# The package's folder of Swagger UI files (swagger-ui-bundle.js, swagger-ui.css, favicon.png).
SWAGGER_UI_FILES = str(importlib.resources.files("fastapi_offline") / "static")


async def token_or_console_session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """A bearer token if one is sent, else the console's session (401 without either)."""
    if credentials is not None:
        await require_token(request, credentials)
    else:
        await current_user(request)


def install_api_docs(app: FastAPI, settings: Settings) -> None:
    """Serve /docs, its files and /openapi.json (create the app with docs_url=None etc.)."""
    guard = [Depends(token_or_console_session)] if settings.docs_require_token else []
    app.mount(STATIC_PATH, StaticFiles(directory=SWAGGER_UI_FILES), name="swagger-ui")

    @app.get(OPENAPI_PATH, include_in_schema=False, dependencies=guard)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(DOCS_PATH, include_in_schema=False, dependencies=guard)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{app.title} - API",
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
