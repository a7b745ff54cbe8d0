"""Consent on the console's client page: the API's consent services, the console's roles."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.auth.models import Role
from sms_sender.clients.models import Client
from sms_sender.consent.models import ConsentEvent
from sms_sender.models import Report
from tests.admin.conftest import SignedIn, page_csrf
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

PHONE = "79001234567"


async def _client_id(arrange: Arrange) -> int:
    spec = ClientSpec(PHONE, operator_code="900", tag="vip", timezone="Europe/Moscow")
    (client_id,) = await arrange.clients([spec])
    return client_id


async def _events(
    sessionmaker: async_sessionmaker[AsyncSession], client_id: int
) -> list[ConsentEvent]:
    async with sessionmaker() as reader:
        query = select(ConsentEvent).where(ConsentEvent.client_id == client_id)
        return list((await reader.scalars(query.order_by(ConsentEvent.id))).all())


async def _stored(sessionmaker: async_sessionmaker[AsyncSession], client_id: int) -> Client:
    async with sessionmaker() as reader:
        client = await reader.get(Client, client_id)
        assert client is not None
        return client


async def test_consent_recorded_on_the_page_is_in_the_history_in_the_operators_zone(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client_id(arrange)
    browser = await signed_in(Role.OPERATOR)
    page = f"/admin/clients/{client_id}"
    agreed = (clock.now() - timedelta(days=1)).replace(second=0, microsecond=0)
    moscow = agreed + timedelta(hours=3)  # Europe/Moscow is UTC+3 all year
    response = await browser.post(
        f"{page}/consent",
        data={
            "csrf_token": await page_csrf(browser, page),
            "zone": "Europe/Moscow",
            "consent_at": moscow.strftime("%Y-%m-%dT%H:%M"),
            "consent_source": "shop counter, paper form 17",
        },
    )
    assert response.status_code == 303, response.text
    stored = await _stored(sessionmaker, client_id)
    assert stored.consent_at == agreed.astimezone(UTC)
    assert stored.consent_source == "shop counter, paper form 17"
    (event,) = await _events(sessionmaker, client_id)
    assert (event.change, event.effective_at, event.source) == (
        "consent_given",
        agreed.astimezone(UTC),
        "shop counter, paper form 17",
    )
    assert event.actor.endswith(":user-operator")
    browser.cookies.set("sms_sender_tz", "Europe/Moscow")
    shown = await browser.get(page)
    assert f"{moscow:%Y-%m-%d %H:%M:%S} (Europe/Moscow)" in shown.text
    assert "shop counter, paper form 17" in shown.text
    assert "consent_given" in shown.text


async def test_consent_form_needs_both_fields_and_refuses_the_future(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client_id(arrange)
    browser = await signed_in(Role.OPERATOR)
    page = f"/admin/clients/{client_id}"
    csrf = await page_csrf(browser, page)
    now = clock.now().astimezone(UTC)
    cases = [
        ({"consent_at": f"{now - timedelta(days=1):%Y-%m-%dT%H:%M}"}, "say where or how"),
        ({"consent_source": "web form"}, "give the date and time"),
        (
            {"consent_at": f"{now + timedelta(days=1):%Y-%m-%dT%H:%M}", "consent_source": "web"},
            "is in the future",
        ),
    ]
    for fields, message in cases:
        response = await browser.post(
            f"{page}/consent", data={"csrf_token": csrf, "zone": "UTC", **fields}
        )
        assert response.status_code == 422, response.text
        assert message in response.text
    assert await _events(sessionmaker, client_id) == []


async def test_opt_out_on_the_page_skips_the_clients_pending_reports_like_the_api(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client_id(arrange)
    browser = await signed_in(Role.OPERATOR)
    mailing = await _running_mailing(browser, clock)
    assert (await browser.get(f"{mailing}/progress.json")).json()["by_status"]["pending"] == 1
    page = f"/admin/clients/{client_id}"
    response = await browser.post(
        f"{page}/opt-out",
        data={"csrf_token": await page_csrf(browser, page), "source": "call to support"},
    )
    assert response.status_code == 303, response.text
    stored = await _stored(sessionmaker, client_id)
    assert stored.opted_out_at == clock.now()
    assert stored.opt_out_source == "call to support"
    async with sessionmaker() as reader:
        (report,) = (await reader.scalars(select(Report))).all()
    assert (report.status, report.error) == ("skipped", "opted_out")
    (event,) = await _events(sessionmaker, client_id)
    assert (event.change, event.source) == ("opted_out", "call to support")
    shown = await browser.get(page)
    assert "call to support" in shown.text
    assert f"/admin/clients/{client_id}/opt-out" not in shown.text  # already out


async def test_a_viewer_sees_consent_but_gets_403_on_its_forms(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client_id(arrange)
    browser = await signed_in(Role.VIEWER)
    page = f"/admin/clients/{client_id}"
    shown = await browser.get(page)
    assert shown.status_code == 200
    assert "No consent changes yet." in shown.text
    assert f"{page}/consent" not in shown.text
    csrf = await page_csrf(browser, page)
    agreed = f"{clock.now() - timedelta(days=1):%Y-%m-%dT%H:%M}"
    consent = await browser.post(
        f"{page}/consent",
        data={"csrf_token": csrf, "zone": "UTC", "consent_at": agreed, "consent_source": "web"},
    )
    opt_out = await browser.post(f"{page}/opt-out", data={"csrf_token": csrf, "source": "x"})
    assert (consent.status_code, opt_out.status_code) == (403, 403)
    assert await _events(sessionmaker, client_id) == []
    assert (await _stored(sessionmaker, client_id)).opted_out_at is None


async def test_consent_forms_without_the_csrf_token_are_refused(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client_id(arrange)
    browser = await signed_in(Role.OPERATOR)
    page = f"/admin/clients/{client_id}"
    agreed = f"{clock.now() - timedelta(days=1):%Y-%m-%dT%H:%M}"
    consent = await browser.post(
        f"{page}/consent", data={"zone": "UTC", "consent_at": agreed, "consent_source": "web"}
    )
    opt_out = await browser.post(f"{page}/opt-out", data={"csrf_token": "0" * 64})
    assert (consent.status_code, opt_out.status_code) == (403, 403)
    assert "CSRF" in consent.text
    assert await _events(sessionmaker, client_id) == []
    assert (await _stored(sessionmaker, client_id)).opted_out_at is None


async def _running_mailing(browser: httpx.AsyncClient, clock: FakeClock) -> str:
    """A service mailing to the vip clients, started now: its reports are pending."""
    csrf = await page_csrf(browser)
    made = await browser.post("/admin/messages/new", data={"csrf_token": csrf, "text": "Hello"})
    assert made.status_code == 303, made.text
    message_id = made.headers["location"].split("/")[-1].split("?")[0]
    now = datetime.fromtimestamp(clock.now().timestamp(), UTC)
    response = await browser.post(
        "/admin/mailings/new",
        data={
            "csrf_token": csrf,
            "message_id": message_id,
            "zone": "UTC",
            "start_at": f"{now:%Y-%m-%dT%H:%M}",
            "end_at": f"{now + timedelta(hours=2):%Y-%m-%dT%H:%M}",
            "tags[]": ["vip"],
        },
    )
    assert response.status_code == 303, response.text
    return response.headers["location"].split("?")[0]


async def test_consent_withdrawn_on_the_page_is_the_apis_null(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client_id(arrange)
    browser = await signed_in(Role.OPERATOR)
    page = f"/admin/clients/{client_id}"
    assert ">Withdraw consent</button>" not in (await browser.get(page)).text  # none to withdraw
    agreed = clock.now() - timedelta(days=1)
    given = await browser.post(
        f"{page}/consent",
        data={
            "csrf_token": await page_csrf(browser, page),
            "zone": "UTC",
            "consent_at": agreed.strftime("%Y-%m-%dT%H:%M"),
            "consent_source": "web form",
        },
    )
    assert given.status_code == 303
    assert ">Withdraw consent</button>" in (await browser.get(page)).text
    withdrawn = await browser.post(
        f"{page}/withdraw-consent", data={"csrf_token": await page_csrf(browser, page)}
    )
    assert withdrawn.status_code == 303
    assert withdrawn.headers["location"] == f"{page}?withdrawn=1"
    stored = await _stored(sessionmaker, client_id)
    assert (stored.consent_at, stored.consent_source) == (None, None)
    changes = [event.change for event in await _events(sessionmaker, client_id)]
    assert changes == ["consent_given", "consent_withdrawn"]
    shown = await browser.get(f"{page}?withdrawn=1")
    assert "Consent withdrawn." in shown.text
    assert ">Withdraw consent</button>" not in shown.text


async def test_a_viewer_may_not_withdraw_consent(
    signed_in: SignedIn, arrange: Arrange, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client_id = await _client_id(arrange)
    browser = await signed_in(Role.VIEWER)
    page = f"/admin/clients/{client_id}"
    refused = await browser.post(
        f"{page}/withdraw-consent", data={"csrf_token": await page_csrf(browser, page)}
    )
    assert refused.status_code == 403


async def test_the_import_form_describes_the_consent_columns(signed_in: SignedIn) -> None:
    browser = await signed_in(Role.OPERATOR)
    page = (await browser.get("/admin/clients")).text
    assert "The header may end with ,consent_at,consent_source" in page


async def test_the_names_the_service_records_are_shown_in_the_pages_language(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A stop-list import, the inbound webhook, the suppression list and where an actor acted
    are the service's own words; a source a person typed is shown as typed."""
    client_id = await _client_id(arrange)
    now = clock.now()
    recorded = [
        ("opted_out", "stop list import", "api:ops-token"),
        ("opted_out", "suppression list: call centre, ticket 42", "suppression list"),
        ("opted_out", "STOP by SMS", "inbound webhook"),
        ("consent_given", "shop counter", "admin:anna"),
    ]
    async with sessionmaker() as writer, writer.begin():
        writer.add_all(
            ConsentEvent(
                client_id=client_id,
                change=change,
                effective_at=now,
                recorded_at=now,
                source=source,
                actor=actor,
            )
            for change, source, actor in recorded
        )
    browser = await signed_in(Role.VIEWER)

    russian = await browser.get(
        f"/admin/clients/{client_id}", headers={"Accept-Language": "ru-RU,ru;q=0.9"}
    )
    cells = {cell.strip() for cell in _cells(russian.text)}
    assert {
        "импорт стоп-листа",
        "API:ops-token",
        "стоп-лист: call centre, ticket 42",
        "стоп-лист",
        "STOP by SMS",
        "входящий вебхук",
        "shop counter",
        "консоль:anna",
    } <= cells
    english = await browser.get(f"/admin/clients/{client_id}", headers={"Accept-Language": "en"})
    assert {source for _, source, _ in recorded} | {actor for *_, actor in recorded} <= {
        cell.strip() for cell in _cells(english.text)
    }


def _cells(page: str) -> list[str]:
    return [html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)]
