"""Sign-in through the OpenID provider in a real browser (Debian's Chromium, Playwright), against
a real ``sms-sender serve`` on 127.0.0.1, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from tests.admin.test_browser import (  # noqa: F401  (fixtures: a database, Chromium)
    BIN,
    Served,
    _cli,
    _shot,
    browser,
    chromium,
    own_database,
    serving,
)
from tests.oidc.conftest import CLIENT_ID, CLIENT_SECRET


@pytest.fixture(scope="module")
def oidc_server(
    own_database: str,  # noqa: F811
    oidc_issuer: str,
    served_console_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """`sms-sender serve` with OIDC on: admins and operators by group, example.com only."""
    env = os.environ | {
        "SMS_SENDER_DATABASE_URL": own_database,
        "SMS_SENDER_PROVIDER": "console",
        "SMS_SENDER_SESSION_SECRET": uuid.uuid4().hex,
        "SMS_SENDER_LOG_LEVEL": "WARNING",
        "SMS_SENDER_OIDC_ISSUER": oidc_issuer,
        "SMS_SENDER_OIDC_CLIENT_ID": CLIENT_ID,
        "SMS_SENDER_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "SMS_SENDER_OIDC_SCOPES": "openid email groups",
        "SMS_SENDER_OIDC_PROVIDER_NAME": "Test IdP",
        "SMS_SENDER_OIDC_ALLOWED_DOMAINS": "example.com",
        "SMS_SENDER_OIDC_GROUP_ROLES": "sms-admins=admin,sms-operators=operator",
    }
    _cli(env, "migrate")
    log_path = tmp_path_factory.mktemp("oidc-server") / "server.log"
    with serving(env, served_console_port, log_path) as served:
        yield served


@pytest.fixture
async def context(
    browser: Browser,  # noqa: F811
    oidc_server: Served,
) -> AsyncIterator[BrowserContext]:
    """A fresh profile that may reach 127.0.0.1 (the service and the provider) and nothing else."""
    opened = await browser.new_context(base_url=oidc_server.base_url, locale="en-GB")

    async def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
            return
        # The test provider's own pages ask Google for a font; only ours must ask nobody.
        if route.request.frame.url.startswith(oidc_server.base_url):
            oidc_server.refused.append(route.request.url)
        await route.abort()

    await opened.route("**/*", only_loopback)
    yield opened
    await opened.close()
    assert oidc_server.refused == [], f"beyond 127.0.0.1: {oidc_server.refused}"


async def _through_provider(page: Page, login: str) -> None:
    await page.goto("/admin/mailings")
    await _shot(page, "login-oidc")
    await page.get_by_role("link", name="Sign in with Test IdP").click()
    await page.get_by_placeholder("Enter any login").fill(login)
    await page.get_by_placeholder("and password").fill("any password")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()  # the provider's consent


async def test_an_admin_signs_in_through_the_provider_and_lands_where_they_were_going(
    context: BrowserContext,
) -> None:
    page = await context.new_page()
    await _through_provider(page, "alice")
    await expect(page).to_have_url(re.compile(r"/admin/mailings$"))
    await expect(page.get_by_text("Signed in as alice@example.com")).to_be_visible()
    await expect(page.get_by_role("link", name="Users")).to_be_visible()  # the admin's menu
    await page.goto("/admin/users")
    await expect(page.get_by_role("cell", name="alice@example.com")).to_be_visible()
    await page.goto("/admin/audit")
    await expect(page.get_by_role("cell", name="alice@example.com (admin)")).to_be_visible()
    await _shot(page, "audit")


async def test_an_operator_lands_without_the_admin_pages(context: BrowserContext) -> None:
    page = await context.new_page()
    await _through_provider(page, "oscar")
    await expect(page.get_by_text("Signed in as oscar@example.com")).to_be_visible()
    await expect(page.get_by_role("link", name="Users")).to_have_count(0)


async def test_someone_outside_the_allowed_domain_is_told_why(context: BrowserContext) -> None:
    page = await context.new_page()
    await _through_provider(page, "eve")
    await expect(page.get_by_role("alert")).to_contain_text(
        "eve@elsewhere.org may not sign in here"
    )
    await _shot(page, "login-refused")
    await page.goto("/admin")
    await expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
