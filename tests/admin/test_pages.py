"""Console pages over HTTP: the same rules as the API, roles enforced by the server."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.admin import (
    access,
    audit,
    clients,
    dashboard,
    login,
    mailings,
    messages,
    oidc_login,
)
from sms_sender.auth.models import Role
from sms_sender.messages.encoding import sms_size
from sms_sender.models import Report, ReportStatus
from tests.admin.conftest import SignedIn, page_csrf
from tests.arrange import Arrange, ClientSpec, phones
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

PUBLIC = {"/admin/login", "/admin/lang", "/admin/login/oidc", "/admin/auth/callback"}
VIP = ClientSpec("79001234567", operator_code="900", tag="vip", timezone="Europe/Moscow")
UNTAGGED = ClientSpec("79161234567", operator_code="916", timezone="Europe/Moscow")
CONSOLE_ROUTERS = [
    module.router
    for module in (access, audit, clients, dashboard, login, mailings, messages, oidc_login)
]


async def test_every_console_route_needs_a_session(browser_like: httpx.AsyncClient) -> None:
    """Walks every console route, so a page added later cannot forget to ask who is there."""
    checked = 0
    for route in [route for pages in CONSOLE_ROUTERS for route in pages.routes]:
        assert isinstance(route, APIRoute)
        if route.path in PUBLIC:
            continue
        path = route.path.replace("{mailing_id}", "1").replace("{client_id}", "1")
        path = path.replace("{message_id}", "1").replace("{user_id}", "1")
        path = path.replace("{name}", "x").replace("{action}", "pause")
        for method in route.methods:
            response = await browser_like.request(method, path)
            assert response.status_code == 303, f"{method} {path} answered without a session"
            assert response.headers["location"].startswith("/admin/login")
            checked += 1
    assert checked >= 25


async def test_a_viewer_reads_every_page_but_gets_403_on_writes(signed_in: SignedIn) -> None:
    client = await signed_in(Role.VIEWER)
    for path in ("/admin", "/admin/clients", "/admin/messages", "/admin/mailings"):
        assert (await client.get(path)).status_code == 200, path
    csrf = await page_csrf(client)
    refused = await client.post(
        "/admin/clients/new", data={"csrf_token": csrf, "phone": "79001234567"}
    )
    assert refused.status_code == 403
    assert "your role (viewer) may not do this" in refused.text
    assert (await client.get("/admin/users")).status_code == 403
    assert (await client.post("/admin/tokens", data={"csrf_token": csrf})).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/admin",
        "/admin/clients/new",
        "/admin/messages/new",
        "/admin/mailings/new",
        "/admin/tokens",
        "/admin/users",
        "/admin/clients?tag=x&cursor=5",
        "/admin/mailings?status=running",
    ],
)
async def test_every_page_renders_for_an_admin(signed_in: SignedIn, path: str) -> None:
    client = await signed_in(Role.ADMIN)
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


async def test_client_form_shows_the_apis_messages_beside_the_fields(
    signed_in: SignedIn,
) -> None:
    client = await signed_in(Role.OPERATOR)
    csrf = await page_csrf(client)
    bad = await client.post(
        "/admin/clients/new", data={"csrf_token": csrf, "phone": "8900", "timezone": "Mars/Base"}
    )
    assert bad.status_code == 422
    assert "must be 11 digits starting with 7" in bad.text
    assert 'value="8900"' in bad.text  # what was typed stays in the form
    made = await client.post(
        "/admin/clients/new", data={"csrf_token": csrf, "phone": "79001234567", "tag": "vip"}
    )
    assert made.status_code == 303
    again = await client.post(
        "/admin/clients/new", data={"csrf_token": csrf, "phone": "79001234567"}
    )
    assert again.status_code == 409
    assert "already belongs to client" in again.text
    found = await client.get("/admin/clients?phone_prefix=7900&tag=vip")
    assert "79001234567" in found.text
    assert "79001234567" not in (await client.get("/admin/clients?phone_prefix=7916")).text


async def test_csv_import_reports_bad_lines_by_number(signed_in: SignedIn) -> None:
    client = await signed_in(Role.OPERATOR)
    csrf = await page_csrf(client)
    body = "phone,operator_code,tag,timezone\n79001234567,,vip,\nbad,,,\n79161234567,916,,\n"
    response = await client.post(
        "/admin/clients/import",
        files={"file": ("clients.csv", body, "text/csv")},
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["imported"], result["failed"]) == (2, 1)
    assert result["errors"][0]["line"] == 3


async def test_console_import_takes_files_past_the_default_body_limit(
    signed_in: SignedIn,
) -> None:
    client = await signed_in(Role.OPERATOR)
    rows = "".join(f"7900{number:07d},,bulk,\n" for number in range(5000))  # ~90 KiB
    response = await client.post(
        "/admin/clients/import",
        files={"file": ("clients.csv", "phone,operator_code,tag,timezone\n" + rows, "text/csv")},
        headers={"X-CSRF-Token": await page_csrf(client), "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 5000


@pytest.mark.parametrize("text", ["Hello", "Привет", "{}" * 80, "a" * 161, "😀" * 35])
async def test_the_counter_endpoint_is_the_apis_arithmetic(signed_in: SignedIn, text: str) -> None:
    client = await signed_in(Role.VIEWER)
    answer = (await client.get("/admin/messages/size", params={"text": text})).json()
    size = sms_size(text)
    assert answer == {"length": size.length, "encoding": size.encoding, "segments": size.segments}


async def _mailing(client: httpx.AsyncClient, clock: FakeClock, text: str = "Sale") -> str:
    csrf = await page_csrf(client)
    made = await client.post("/admin/messages/new", data={"csrf_token": csrf, "text": text})
    assert made.status_code == 303, made.text
    message_id = made.headers["location"].split("/")[-1].split("?")[0]
    start = clock.now().astimezone().replace(tzinfo=None)
    moscow = clock.now() + timedelta(hours=3)  # Europe/Moscow is UTC+3 all year
    response = await client.post(
        "/admin/mailings/new",
        data={
            "csrf_token": csrf,
            "message_id": message_id,
            "zone": "Europe/Moscow",
            "start_at": moscow.strftime("%Y-%m-%dT%H:%M"),
            "end_at": (moscow + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            "tags[]": ["vip"],
        },
    )
    assert response.status_code == 303, response.text
    assert start is not None
    return response.headers["location"].split("?")[0]


async def test_mailing_created_in_the_operators_zone_runs_and_obeys_controls(
    signed_in: SignedIn, clock: FakeClock, arrange: Arrange
) -> None:
    await arrange.clients([VIP, UNTAGGED])
    client = await signed_in(Role.OPERATOR)
    page = await _mailing(client, clock)
    progress = (await client.get(f"{page}/progress.json")).json()
    assert progress["status"] == "running"
    assert progress["total"] == 1  # only the vip client
    csrf = await page_csrf(client, page)
    assert (await client.post(f"{page}/pause", data={"csrf_token": csrf})).status_code == 303
    twice = await client.post(f"{page}/pause", data={"csrf_token": csrf})
    assert twice.status_code == 409
    assert "paused" in twice.text
    assert (await client.post(f"{page}/resume", data={"csrf_token": csrf})).status_code == 303
    assert (await client.post(f"{page}/cancel", data={"csrf_token": csrf})).status_code == 303
    assert (await client.get(f"{page}/progress.json")).json()["by_status"]["cancelled"] == 1


async def test_a_running_mailing_refuses_unsafe_edits_with_the_apis_reason(
    signed_in: SignedIn, clock: FakeClock, arrange: Arrange
) -> None:
    await arrange.clients([VIP])
    client = await signed_in(Role.OPERATOR)
    page = await _mailing(client, clock)
    csrf = await page_csrf(client, page)
    later = (clock.now() + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    edit = await client.post(
        f"{page}/edit",
        data={"csrf_token": csrf, "zone": "UTC", "start_at": later, "end_at": later},
    )
    assert edit.status_code == 409
    assert "start_at" in edit.text
    fine = await client.post(
        f"{page}/edit",
        data={
            "csrf_token": csrf,
            "zone": "UTC",
            "end_at": later,
            "window_start": "09:00",
            "window_end": "21:00",
        },
    )
    assert fine.status_code == 303, fine.text


async def test_report_export_escapes_formula_cells(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await arrange.clients([VIP])
    client = await signed_in(Role.OPERATOR)
    page = await _mailing(client, clock, text='=HYPERLINK("http://x")')
    async with sessionmaker() as writer:
        await writer.execute(update(Report).values(error="@SUM(A1)", provider="-x"))
        await writer.commit()
    exported = await client.get(f"{page}/reports.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 1
    assert rows[0]["text"].startswith("'=HYPERLINK")
    assert rows[0]["error"] == "'@SUM(A1)"
    assert rows[0]["provider"] == "'-x"
    assert rows[0]["phone"] == "79001234567"


async def test_dashboard_figures(signed_in: SignedIn, clock: FakeClock, arrange: Arrange) -> None:
    await arrange.clients([VIP])
    client = await signed_in(Role.OPERATOR)
    page = await _mailing(client, clock)
    mailing_id = int(page.rsplit("/", 1)[1])
    figures = (await client.get("/admin/dashboard.json")).json()
    assert [m["id"] for m in figures["active"]] == [mailing_id]
    assert figures["active"][0]["total"] == 1
    assert figures["active"][0]["done"] == 0
    activity = (await client.get("/admin/activity.json")).json()
    assert len(activity["per_minute"]) == 60
    assert activity["today"] == {}  # nothing sent yet


async def test_a_token_is_shown_once_and_can_be_revoked(
    signed_in: SignedIn, anon_client: httpx.AsyncClient
) -> None:
    client = await signed_in(Role.ADMIN)
    csrf = await page_csrf(client, "/admin/tokens")
    created = await client.post("/admin/tokens", data={"csrf_token": csrf, "name": "crm"})
    assert created.status_code == 201
    token = created.text.split('id="new-token" value="')[1].split('"')[0]
    assert token.startswith("sms_")
    assert token not in (await client.get("/admin/tokens")).text
    api = {"Authorization": f"Bearer {token}"}
    assert (await anon_client.get("/api/v1/messages", headers=api)).status_code == 200
    assert (await anon_client.get("/api/v1/audit", headers=api)).status_code == 403
    revoked = await client.post("/admin/tokens/crm/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303


async def test_an_admin_may_give_a_token_the_audit_log(
    signed_in: SignedIn, anon_client: httpx.AsyncClient
) -> None:
    client = await signed_in(Role.ADMIN)
    csrf = await page_csrf(client, "/admin/tokens")
    created = await client.post(
        "/admin/tokens", data={"csrf_token": csrf, "name": "siem", "reads_audit": "on"}
    )
    assert created.status_code == 201
    token = created.text.split('id="new-token" value="')[1].split('"')[0]
    api = {"Authorization": f"Bearer {token}"}
    assert (await anon_client.get("/api/v1/audit", headers=api)).status_code == 200


async def test_admin_creates_and_disables_users(signed_in: SignedIn) -> None:
    client = await signed_in(Role.ADMIN)
    csrf = await page_csrf(client, "/admin/users")
    short = await client.post(
        "/admin/users", data={"csrf_token": csrf, "name": "ivan", "password": "x", "role": "viewer"}
    )
    assert short.status_code == 422
    assert "at least 10 characters" in short.text
    made = await client.post(
        "/admin/users",
        data={"csrf_token": csrf, "name": "ivan", "password": "long enough pw", "role": "viewer"},
    )
    assert made.status_code == 303
    assert "ivan" in (await client.get("/admin/users")).text


async def test_resend_unknown_requeues_through_the_apis_service(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
) -> None:
    await arrange.clients([VIP])
    client = await signed_in(Role.OPERATOR)
    page = await _mailing(client, clock)
    (report,) = await arrange.reports(int(page.rsplit("/", 1)[1]))
    await arrange.reports_in(ReportStatus.UNKNOWN, [report.id])
    detail = await client.get(page)
    assert "Resend unknown" in detail.text
    resent = await client.post(
        f"{page}/resend-unknown", data={"csrf_token": await page_csrf(client, page)}
    )
    assert resent.status_code == 303
    assert resent.headers["location"].endswith("requeued=1")
    assert (await client.get(f"{page}/progress.json")).json()["by_status"]["pending"] == 1


async def test_the_forms_preview_is_the_apis_preview(
    signed_in: SignedIn, clock: FakeClock, arrange: Arrange
) -> None:
    await arrange.clients([VIP, UNTAGGED])
    client = await signed_in(Role.OPERATOR)
    headers = {"X-CSRF-Token": await page_csrf(client), "Accept": "application/json"}
    service = await client.post(
        "/admin/mailings/preview", json={"tags": ["vip"], "purpose": "service"}, headers=headers
    )
    assert service.status_code == 200, service.text
    assert (service.json()["matching"], service.json()["will_send"]) == (1, 1)
    advertising = await client.post(
        "/admin/mailings/preview", json={"purpose": "advertising"}, headers=headers
    )
    assert advertising.json()["matching"] == 2
    assert advertising.json()["skipped"]["no_consent"] == 2
    bad = await client.post(
        "/admin/mailings/preview", json={"tags": [""], "purpose": "spam"}, headers=headers
    )
    assert bad.status_code == 422
    assert "purpose" in bad.text


async def test_the_live_part_follows_the_mailing_with_the_page_s_filter(
    signed_in: SignedIn, clock: FakeClock, arrange: Arrange
) -> None:
    await arrange.clients(
        [ClientSpec(f"7900123456{digit}", "900", "vip") for digit in range(3)]
        + [ClientSpec("79161234567", "916", "vip")]
    )
    client = await signed_in(Role.OPERATOR)
    page = await _mailing(client, clock)
    live = await client.get(
        f"{page}/live", params={"phone": "79001234561", "report_status": "pending"}
    )
    assert live.status_code == 200
    assert 'id="mailing-reports"' in live.text
    assert 'id="mailing-controls" data-status="running"' in live.text
    assert live.text.count("<tr><td") == 1  # the phone filter holds
    assert "79001234561" in live.text
    assert ">Pause</button>" in live.text
    assert ">Delete</button>" not in live.text
    csrf = await page_csrf(client, page)
    assert (await client.post(f"{page}/cancel", data={"csrf_token": csrf})).status_code == 303
    after = await client.get(
        f"{page}/live", params={"phone": "79001234561", "report_status": "pending"}
    )
    assert 'data-status="cancelled"' in after.text
    assert "No reports match." in after.text  # none pending any more
    assert ">Delete</button>" in after.text
    assert ">Pause</button>" not in after.text


async def test_the_live_part_s_pager_leads_to_the_page_not_to_the_part(
    signed_in: SignedIn, clock: FakeClock, arrange: Arrange
) -> None:
    await arrange.clients([ClientSpec(phone, "900", "vip") for phone in phones(51)])
    client = await signed_in(Role.OPERATOR)
    page = await _mailing(client, clock)
    live = await client.get(f"{page}/live", params={"report_status": "pending"})
    assert f'rel="next" href="{page}?report_status=pending&amp;cursor=' in live.text


async def test_activity_counts_what_was_sent_in_each_period(
    signed_in: SignedIn,
    clock: FakeClock,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await arrange.clients([ClientSpec(phone, "900", "vip") for phone in phones(5)])
    client = await signed_in(Role.OPERATOR)
    mailing_id = int((await _mailing(client, clock)).rsplit("/", 1)[1])
    now = clock.now()
    sent = [  # (status, sent_at): one still pending
        ("sent", now - timedelta(minutes=2, seconds=30)),
        ("delivered", now - timedelta(minutes=2)),
        ("delivered", now - timedelta(hours=3)),
        ("failed", now - timedelta(days=3)),
    ]
    async with sessionmaker() as session, session.begin():
        ids = (
            await session.scalars(
                select(Report.id).where(Report.mailing_id == mailing_id).order_by(Report.id)
            )
        ).all()
        for report_id, (status, sent_at) in zip(ids, sent, strict=False):
            await session.execute(
                update(Report).where(Report.id == report_id).values(status=status, sent_at=sent_at)
            )
    activity = (await client.get("/admin/activity.json")).json()
    assert activity["today"] == {"sent": 1, "delivered": 2}
    assert activity["week"] == {"sent": 1, "delivered": 2, "failed": 1}
    minutes = {m["at"]: m["by_status"] for m in activity["per_minute"] if m["by_status"]}
    assert list(minutes.values()) == [{"sent": 1}, {"delivered": 1}]


async def test_a_phone_prefix_is_a_range_of_the_phone_index(
    signed_in: SignedIn, arrange: Arrange
) -> None:
    await arrange.clients(
        [
            ClientSpec(phone)
            for phone in ("79001234567", "79009999999", "79010000000", "79991234567")
        ]
    )
    client = await signed_in(Role.VIEWER)

    async def found(prefix: str) -> list[str]:
        page = (await client.get("/admin/clients", params={"phone_prefix": prefix})).text
        return sorted(set(re.findall(r"<td>(7\d{10})</td>", page)))

    assert await found("7900") == ["79001234567", "79009999999"]
    assert await found("79009") == ["79009999999"]
    assert await found("7999") == ["79991234567"]
    assert await found("7") == ["79001234567", "79009999999", "79010000000", "79991234567"]
    assert await found("8") == []
    assert await found("79_") == []  # not a wildcard
    assert await found("7%") == []


async def test_clients_by_phone_prefix_page_in_phone_order(
    signed_in: SignedIn, arrange: Arrange
) -> None:
    """More than a page of matches, added in the reverse of their phone order: each once."""
    matching = [f"7903{number:07d}" for number in range(120, 0, -1)]
    await arrange.clients([ClientSpec(phone) for phone in ["79001234567", *matching]])
    client = await signed_in(Role.VIEWER)
    seen: list[str] = []
    path: str | None = "/admin/clients?phone_prefix=7903"
    while path:
        page = (await client.get(path)).text
        seen += re.findall(r"<td>(7\d{10})</td>", page)
        following = re.search(r'<a rel="next" href="([^"]+)"', page)
        path = html.unescape(following.group(1)) if following else None
    assert seen == sorted(matching)
