# ruff: noqa: RUF001 (Russian text: Cyrillic letters that look Latin are meant)
"""Errors from the services and schemas read in the page's language; the API keeps English."""

from __future__ import annotations

import httpx
import pytest

from sms_sender.auth.models import Role
from tests.admin.conftest import MakeUser, SignedIn, page_csrf
from tests.admin.test_pages import VIP, _mailing
from tests.arrange import Arrange
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

RUSSIAN = {"Accept-Language": "ru-RU,ru;q=0.9"}


async def test_a_refused_mailing_control_is_explained_in_russian(
    signed_in: SignedIn, client: httpx.AsyncClient, clock: FakeClock, arrange: Arrange
) -> None:
    await arrange.clients([VIP])
    console = await signed_in(Role.OPERATOR)
    page = await _mailing(console, clock)
    csrf = await page_csrf(console, page)
    assert (await console.post(f"{page}/pause", data={"csrf_token": csrf})).status_code == 303
    console.headers.update(RUSSIAN)
    twice = await console.post(f"{page}/pause", data={"csrf_token": csrf})
    assert twice.status_code == 409
    mailing_id = page.rsplit("/", 1)[-1]
    assert (
        f"рассылка {mailing_id} в состоянии «приостановлено»; приостановить можно только идущую"
        in twice.text
    )
    assert "only a running" not in twice.text
    # The API, asked the same, answers in English and names the reason's code.
    api = await client.post(f"/api/v1/mailings/{mailing_id}/pause", headers=RUSSIAN)
    assert api.status_code == 409
    assert api.json()["detail"] == (
        f"mailing {mailing_id} is paused; only a running or scheduled mailing can be paused"
    )
    assert api.json()["code"] == "mailing_not_pausable"


async def test_field_errors_of_the_schema_and_the_service_read_in_russian(
    signed_in: SignedIn, client: httpx.AsyncClient
) -> None:
    console = await signed_in(Role.OPERATOR)
    csrf = await page_csrf(console)
    console.headers.update(RUSSIAN)
    bad = await console.post(
        "/admin/clients/new", data={"csrf_token": csrf, "phone": "8900", "tag": "x" * 65}
    )
    assert bad.status_code == 422
    assert "нужно 11 цифр, начиная с 7" in bad.text  # our rule, by its code
    assert "нужно не больше 64 симв." in bad.text  # pydantic's, by its type
    assert "must be 11 digits" not in bad.text
    made = {"csrf_token": csrf, "phone": "79001234567"}
    assert (await console.post("/admin/clients/new", data=made)).status_code == 303
    again = await console.post("/admin/clients/new", data=made)
    assert again.status_code == 409
    assert "телефон 79001234567 уже принадлежит клиенту" in again.text
    api = await client.post("/api/v1/clients", json={"phone": "8900"}, headers=RUSSIAN)
    assert api.status_code == 422
    (error,) = api.json()["errors"]
    assert error["msg"].startswith("must be 11 digits starting with 7")
    assert error["code"] == "phone_format"


async def test_the_pages_scripts_get_the_reader_s_language_too(signed_in: SignedIn) -> None:
    console = await signed_in(Role.OPERATOR)
    csrf = await page_csrf(console)
    answer = await console.post(
        "/admin/mailings/preview",
        json={"operator_codes": ["12"]},
        headers={**RUSSIAN, "Accept": "application/json", "X-CSRF-Token": csrf},
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert "код оператора — 3 цифры" in problem["detail"]
    assert problem["errors"][0]["code"] == "filter_operator_code"
    assert "values" not in problem["errors"][0]


async def test_an_unknown_console_action_is_explained_in_russian(
    signed_in: SignedIn, make_user: MakeUser, clock: FakeClock, arrange: Arrange
) -> None:
    await arrange.clients([VIP])
    console = await signed_in(Role.ADMIN)
    page = await _mailing(console, clock)
    csrf = await page_csrf(console, page)
    console.headers.update(RUSSIAN)
    unknown = await console.post(f"{page}/launch", data={"csrf_token": csrf})
    assert unknown.status_code == 422
    assert "неизвестное действие &#39;launch&#39;; есть pause, resume и cancel" in unknown.text
    csrf = await page_csrf(console, "/admin/users")
    other = await make_user("ivan")
    user = await console.post(f"/admin/users/{other.id}/promote", data={"csrf_token": csrf})
    assert user.status_code == 422
    assert "неизвестное действие &#39;promote&#39;; есть disable, enable и role" in user.text
