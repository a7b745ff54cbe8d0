"""/docs works offline (nothing from a CDN) and can be put behind authentication."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.admin.conftest import MakeUser, sign_in
from tests.security.conftest import AppFactory

pytestmark = pytest.mark.usefixtures("clean_db")

# Every address the page loads: src="…", href="…" and the url: '…' Swagger UI is given.
REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)|url:\s*["']([^"']+)""")


def _references(page: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(page)]


async def test_swagger_ui_loads_only_from_this_service(anon_client: httpx.AsyncClient) -> None:
    page = await anon_client.get("/docs")

    assert page.status_code == 200
    references = _references(page.text)
    assert references, page.text
    for reference in references:
        assert re.match("/[^/]", reference), f"{reference} is not on this service"
    assert "http://" not in page.text
    assert "https://" not in page.text
    assert "validatorUrl" in page.text  # the badge that would call validator.swagger.io is off
    for reference in references:
        served = await anon_client.get(reference)
        assert served.status_code == 200, reference
    assert "openapi" in (await anon_client.get("/openapi.json")).json()


async def test_redoc_is_not_served_from_a_cdn_either(anon_client: httpx.AsyncClient) -> None:
    assert (await anon_client.get("/redoc")).status_code == 404


async def test_docs_stay_open_by_default(make_app: AppFactory) -> None:
    async with make_app() as app, _client(app) as anonymous:
        assert (await anonymous.get("/openapi.json")).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
async def test_docs_can_require_a_token_or_a_console_session(
    make_app: AppFactory, token: str, make_user: MakeUser, path: str
) -> None:
    async with make_app(docs_require_token=True) as app:
        async with _client(app) as anonymous:
            refused = await anonymous.get(path)
        async with _client(app, {"Authorization": f"Bearer {token}"}) as with_token:
            by_token = await with_token.get(path)
        async with _client(app, {"Authorization": "Bearer sms_revoked"}) as wrong_token:
            by_wrong_token = await wrong_token.get(path)
        async with _client(app, {"Accept": "text/html"}) as browser:
            user = await make_user("reader")
            assert (await sign_in(browser, user.name)).status_code == 303
            by_session = await browser.get(path)

    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert by_wrong_token.status_code == 401
    assert by_token.status_code == 200
    assert by_session.status_code == 200


def _client(app: object, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)
