"""The console in a real browser: Debian's Chromium driven by Playwright, against a real
``sms-sender serve`` on 127.0.0.1 with the console provider, on SQLite and on PostgreSQL.

Chromium comes from ``apt-get install chromium`` (.ci/run installs it). Without it these tests
skip on a laptop and fail in CI. Every request the browser makes is checked: anything not for
127.0.0.1 is refused and fails the test. ``SMS_SENDER_SCREENSHOTS=1`` also saves a PNG of each
page to docs/screenshots/ (scripts/console-screenshots).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    Route,
    async_playwright,
    expect,
)
from playwright.async_api import (
    Error as PlaywrightError,
)

from sms_sender.db import normalise_url
from tests.conftest import IN_CI, _admin_execute, postgres_admin_url

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser test password"
ZONE = "Europe/Moscow"
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
BIN = Path(sys.executable).parent
CSV = (
    "phone,operator_code,tag,timezone\n"
    "79001234567,,vip,Europe/Moscow\n"
    "8900,,,\n"
    "79161234567,916,vip,\n"
    "79261234567,926,a-rather-long-tag-name-for-the-table,Asia/Vladivostok\n"
)


@dataclass
class Served:
    base_url: str
    refused: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
async def own_database(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database of the run's kind for the server alone (its own rows and connections)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path_factory.mktemp('browser') / 'console.db'}"
        return
    admin_url = postgres_admin_url()
    name = f"sms_sender_browser_{uuid.uuid4().hex[:12]}"
    await _admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield normalise_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
    subprocess.run(
        [str(BIN / "sms-sender"), *args],
        env=env,
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def server(own_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`sms-sender serve` on a free 127.0.0.1 port, with an admin and a viewer."""
    env = os.environ | {
        "SMS_SENDER_DATABASE_URL": own_database,
        "SMS_SENDER_PROVIDER": "console",
        "SMS_SENDER_RATE_LIMIT": "1000",
        "SMS_SENDER_SESSION_SECRET": uuid.uuid4().hex,
        "SMS_SENDER_LOG_LEVEL": "WARNING",
    }
    _cli(env, "migrate")
    _cli(env, "user", "create", "anna", "--role", "admin", stdin=PASSWORD + "\n")
    _cli(env, "user", "create", "victor", "--role", "viewer", stdin=PASSWORD + "\n")
    with serving(env, _free_port(), tmp_path_factory.mktemp("server") / "server.log") as served:
        yield served


@contextmanager
def serving(env: dict[str, str], port: int, log_path: Path) -> Iterator[Served]:
    """`sms-sender serve` on 127.0.0.1:``port`` once /readyz answers; stopped afterwards."""
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(BIN / "sms-sender"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base_url}/readyz", timeout=1)
                break
            except OSError:
                assert process.poll() is None, "sms-sender serve exited; see its log"
                subprocess.run(["sleep", "0.1"], check=True)
        yield Served(base_url)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium: a failure in CI when missing, a skip elsewhere."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser, server: Served) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) that may reach 127.0.0.1 and nothing else."""
    opened = await browser.new_context(
        base_url=server.base_url,
        timezone_id=ZONE,
        locale="en-GB",
        accept_downloads=True,
        viewport={"width": 1280, "height": 860},
    )

    async def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            server.refused.append(route.request.url)
            await route.abort()

    await opened.route("**/*", only_loopback)
    yield opened
    await opened.close()
    assert server.refused == [], f"the page tried to reach beyond 127.0.0.1: {server.refused}"


async def _sign_in(page: Page, name: str = "anna", path: str = "/admin") -> None:
    await page.goto(path)
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


async def _shot(page: Page, name: str) -> None:
    if os.environ.get("SMS_SENDER_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def _local(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")


async def test_a_signed_out_browser_reaches_no_page(context: BrowserContext) -> None:
    page = await context.new_page()
    for path in ("/", "/admin/clients", "/admin/mailings/1", "/admin/users"):
        await page.goto(path)
        await expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin"))
        await expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    await _shot(page, "login")
    await page.get_by_label("Name").fill("anna")
    await page.get_by_label("Password").fill("wrong password!")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Wrong name or password.")
    await _sign_in(page, "anna", "/admin/users")
    await expect(page).to_have_url(re.compile(r"/admin/users$"))
    await page.get_by_role("button", name="Sign out").click()
    await page.goto("/admin/clients")
    await expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()


async def test_import_write_send_watch_and_export(
    context: BrowserContext, server: Served, tmp_path: Path
) -> None:
    page = await context.new_page()
    await _sign_in(page)

    # Import a CSV: the good rows are kept, the bad line is named by its number.
    await page.goto("/admin/clients")
    await _shot(page, "clients-empty")
    csv_file = tmp_path / "clients.csv"
    await asyncio.to_thread(csv_file.write_text, CSV)
    await page.get_by_label("CSV file").set_input_files(csv_file)
    await page.get_by_role("button", name="Import", exact=True).click()
    result = page.locator("#import-result")
    await expect(result).to_contain_text("Imported 3 clients, 1 rows rejected.")
    await expect(page.locator("#import-errors")).to_contain_text("line 3:")
    await page.goto("/admin/clients?tag=vip")
    await expect(page.get_by_role("cell", name="79161234567")).to_be_visible()
    await expect(page.get_by_role("cell", name="79261234567")).to_have_count(0)
    await page.goto("/admin/clients")
    await _shot(page, "clients")

    # A message, watching the counter move from GSM-7 to UCS-2.
    await page.goto("/admin/messages/new")
    text = page.get_by_label("Text")
    counter = page.locator("#counter")
    await text.fill("Winter sale {20%}")
    await expect(counter).to_have_text("19 characters · GSM-7 · 1 SMS")
    await text.fill("Зимняя распродажа: -20% на всё до воскресенья! " * 2)
    await expect(counter).to_contain_text("UCS-2 · 2 SMS")
    await _shot(page, "message")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")

    # A mailing to the vip tag, starting now in the operator's zone, watched to 100 %.
    await page.goto("/admin/mailings/new")
    await expect(page.get_by_label("Time zone")).to_have_value(ZONE)
    await page.get_by_label("Message").select_option(index=1)
    await page.get_by_label("vip", exact=True).check()
    await expect(page.locator("#preview")).to_contain_text("2 clients match · 2 will get it")
    await page.get_by_label("Purpose").select_option("advertising")
    await expect(page.locator("#preview")).to_contain_text("2 without consent")
    await page.get_by_label("Purpose").select_option("service")
    now = datetime.now().astimezone()
    await page.get_by_label("Start", exact=True).fill(_local(now - timedelta(minutes=1)))
    await page.get_by_label("End", exact=True).fill(_local(now + timedelta(hours=2)))
    await _shot(page, "mailing-new")
    await page.get_by_role("button", name="Create mailing").click()
    await expect(page.get_by_role("heading", name=re.compile(r"Mailing #\d+"))).to_be_visible()
    await page.evaluate("window.notReloaded = true")
    await expect(page.locator("#progress-percent")).to_have_text("100", timeout=20_000)
    await expect(page.locator("#progress-done")).to_have_text("2")
    # The reports table and the actions follow the mailing to its end without a reload.
    await expect(page.locator("#mailing-status")).to_have_text("finished", timeout=20_000)
    await expect(page.get_by_role("button", name="Delete")).to_be_visible()
    await expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    await expect(page.get_by_role("cell", name="sent", exact=True)).to_have_count(2)
    assert await page.evaluate("window.notReloaded === true")
    await _shot(page, "mailing")

    # The reports as CSV: one line per client of the filter, after the header.
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Export CSV").click()
    download = await downloading.value
    exported = (await asyncio.to_thread(Path(await download.path()).read_text)).splitlines()
    assert exported[0].startswith("id,mailing_id,client_id,phone,status")
    assert sorted(line.split(",")[3] for line in exported[1:]) == ["79001234567", "79161234567"]

    await page.goto("/admin")
    await expect(page.locator("#running")).to_be_visible()
    await expect(page.locator("#today-total")).to_have_text("2", timeout=10_000)
    await _shot(page, "dashboard")


async def _a_mailing_for_tomorrow(page: Page, text: str) -> None:
    """A new message and a mailing of it that starts tomorrow; the page shows it scheduled."""
    await page.goto("/admin/messages/new")
    await page.get_by_label("Text").fill(text)
    await page.get_by_role("button", name="Save").click()
    await page.goto("/admin/mailings/new")
    await page.get_by_label("Message").select_option(index=1)
    later = datetime.now().astimezone() + timedelta(days=1)
    await page.get_by_label("Start", exact=True).fill(_local(later))
    await page.get_by_label("End", exact=True).fill(_local(later + timedelta(hours=2)))
    await page.get_by_role("button", name="Create mailing").click()
    await expect(page.locator("#mailing-status")).to_have_text("scheduled")


async def test_pause_resume_cancel_behind_confirmations(context: BrowserContext) -> None:
    page = await context.new_page()
    await _sign_in(page)
    await _a_mailing_for_tomorrow(page, "Later")
    status = page.locator("#mailing-status")

    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
    await page.get_by_role("button", name="Pause").click()
    await expect(status).to_have_text("scheduled")  # dismissed: nothing happened
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_role("button", name="Pause").click()
    await expect(status).to_have_text("paused")
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_role("button", name="Resume").click()
    await expect(status).to_have_text("scheduled")
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_role("button", name="Cancel").click()
    await expect(status).to_have_text("cancelled")
    await page.goto("/admin/mailings")
    await _shot(page, "mailings")


async def test_a_confirmation_is_asked_even_when_the_script_arrives_late(
    context: BrowserContext,
) -> None:
    """The console's script is what asks; a button clicked before it ran would act unasked.

    Found under load in CI: the script was deferred, the page drawn without it, and a click on
    Pause paused the mailing with no question. It now runs before the page's body is drawn.
    """
    page = await context.new_page()
    await _sign_in(page)
    await _a_mailing_for_tomorrow(page, "Asked first")

    async def late(route: Route) -> None:
        await asyncio.sleep(2)
        with contextlib.suppress(PlaywrightError):  # the page may have moved on meanwhile
            await route.continue_()

    await page.route("**/admin/static/console.js", late)
    await page.reload(wait_until="commit")
    asked: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", dismiss)
    await page.get_by_role("button", name="Pause").click()
    await page.unroute("**/admin/static/console.js")
    await page.reload()
    await expect(page.locator("#mailing-status")).to_have_text("scheduled")
    assert len(asked) == 1


async def test_the_reports_table_and_actions_follow_the_mailing_live(
    context: BrowserContext,
) -> None:
    """A second page, filtered to pending reports, follows what the first one does."""
    page = await context.new_page()
    await _sign_in(page)
    await page.goto("/admin/clients/new")
    await page.get_by_label("Phone").fill("79051234567")
    await page.get_by_label("Tag").fill("night")
    await page.get_by_label("Time zone").fill("UTC")
    await page.get_by_role("button", name="Save").click()
    await page.goto("/admin/messages/new")
    await page.get_by_label("Text").fill("Good night")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    message_id = page.url.split("?")[0].rsplit("/", 1)[-1]
    await page.goto("/admin/mailings/new")
    await page.get_by_label("Message").select_option(value=message_id)
    await page.get_by_label("night", exact=True).check()
    now = datetime.now().astimezone()
    await page.get_by_label("Start", exact=True).fill(_local(now - timedelta(minutes=1)))
    await page.get_by_label("End", exact=True).fill(_local(now + timedelta(hours=2)))
    # A send window hours away in the client's zone (UTC): the report waits, pending.
    utc_now = datetime.now(UTC)
    await page.get_by_label("from", exact=True).fill(
        (utc_now + timedelta(hours=3)).strftime("%H:%M")
    )
    await page.get_by_label("to", exact=True).fill((utc_now + timedelta(hours=4)).strftime("%H:%M"))
    await page.get_by_role("button", name="Create mailing").click()
    await expect(page.locator("#mailing-status")).to_have_text("running")

    watcher = await context.new_page()
    await watcher.goto(page.url.split("?")[0] + "?report_status=pending")
    await expect(watcher.get_by_role("cell", name="79051234567")).to_be_visible()
    await expect(watcher.get_by_role("button", name="Pause")).to_be_visible()
    await watcher.evaluate("window.notReloaded = true")

    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_role("button", name="Pause").click()
    await expect(page.locator("#mailing-status")).to_have_text("paused")
    await expect(watcher.locator("#mailing-status")).to_have_text("paused", timeout=10_000)
    await expect(watcher.get_by_role("button", name="Resume")).to_be_visible()
    await expect(watcher.get_by_role("button", name="Pause")).to_have_count(0)

    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_role("button", name="Cancel").click()
    await expect(watcher.locator("#mailing-status")).to_have_text("cancelled", timeout=10_000)
    # The filter (pending) holds: the cancelled report leaves the table; Delete now applies.
    await expect(watcher.get_by_text("No reports match.")).to_be_visible()
    await expect(watcher.get_by_role("button", name="Delete")).to_be_visible()
    await expect(watcher.get_by_role("button", name="Resume")).to_have_count(0)
    assert await watcher.evaluate("window.notReloaded === true")
    assert "report_status=pending" in watcher.url


async def test_the_server_refuses_a_viewers_write_and_a_write_without_csrf(
    context: BrowserContext,
) -> None:
    page = await context.new_page()
    await _sign_in(page, "victor")
    await page.goto("/admin/clients")
    await expect(page.get_by_role("link", name="New client")).to_have_count(0)
    viewer_write = await page.evaluate(
        """async () => (await fetch("/admin/clients/new", {method: "POST",
             headers: {"X-CSRF-Token": csrfToken(),
                       "Content-Type": "application/x-www-form-urlencoded"},
             body: "phone=79031234567"})).status"""
    )
    assert viewer_write == 403
    await page.get_by_role("button", name="Sign out").click()

    await _sign_in(page, "anna")
    await page.goto("/admin/clients/new")
    await page.get_by_label("Phone").fill("79031234567")
    await page.locator("input[name=csrf_token]").first.evaluate("input => input.remove()")
    await page.locator("form.form-grid input[name=csrf_token]").evaluate("input => input.remove()")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("alert")).to_contain_text("security token (CSRF)")
    await page.goto("/admin/clients?phone_prefix=7903")
    await expect(page.get_by_text("No clients match.")).to_be_visible()


async def test_pages_in_russian(context: BrowserContext) -> None:
    page = await context.new_page()
    await _sign_in(page)
    await page.get_by_role("link", name="Русский").click()
    await expect(page.get_by_role("heading", name="Сводка")).to_be_visible()
    for path, name in (("/admin", "dashboard-ru"), ("/admin/users", "users-ru")):
        await page.goto(path)
        await _shot(page, name)
    await page.goto("/admin/tokens")
    await _shot(page, "tokens-ru")
    await page.get_by_role("link", name="English").click()


async def test_api_docs_load_swagger_ui_from_127_0_0_1_alone(
    context: BrowserContext, server: Served
) -> None:
    """Swagger UI's script and styles come from the service: no CDN, nothing beyond loopback."""
    page = await context.new_page()
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui").first).to_be_visible(timeout=20_000)
    assert await page.evaluate("typeof SwaggerUIBundle") == "function"
    # The context fixture fails the test if any request went beyond 127.0.0.1.


async def test_api_docs_render_the_operations(context: BrowserContext) -> None:
    """Swagger UI reads FastAPI's OpenAPI 3.1 document and lists the operations."""
    page = await context.new_page()
    await page.goto("/docs")
    await expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=10_000)
