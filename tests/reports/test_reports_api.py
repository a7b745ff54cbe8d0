from __future__ import annotations

from typing import Any

import httpx
import pytest

from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

CLIENTS = [
    ClientSpec("79160000001", tag="vip"),
    ClientSpec("79160000002"),
    ClientSpec("79260000003", operator_code="926", tag="vip"),
]
REPORT_FIELDS = {
    "id",
    "mailing_id",
    "client_id",
    "phone",
    "text",
    "status",
    "attempts",
    "created_at",
    "updated_at",
    "next_attempt_at",
    "sent_at",
    "provider",
    "provider_message_id",
    "error",
}


@pytest.fixture
async def two_mailings(arrange: Arrange) -> list[int]:
    """Two running mailings to every client in CLIENTS: 6 reports, all pending."""
    await arrange.clients(CLIENTS)
    message_id = await arrange.message("Sale!")
    return [await arrange.mailing(message_id=message_id) for _ in range(2)]


async def _reports(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/reports", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _pages_of_one(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every report matching ``params``, read one per page."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await client.get(
            "/api/v1/reports",
            params={**params, "limit": 1} | ({"cursor": cursor} if cursor else {}),
        )
        assert response.status_code == 200, response.text
        found += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return found


async def test_report_shows_what_was_sent_and_how_it_went(
    client: httpx.AsyncClient,
    arrange: Arrange,
    clock: FakeClock,
    two_mailings: list[int],
) -> None:
    first = (await arrange.reports(two_mailings[0]))[0]
    await arrange.reports_in(
        ReportStatus.SENT,
        [first.id],
        attempts=1,
        sent_at=clock.now(),
        provider="smsaero",
        provider_message_id="8412033",
    )

    response = await client.get(f"/api/v1/reports/{first.id}")

    assert response.status_code == 200
    report = response.json()
    assert set(report) == REPORT_FIELDS
    assert report["mailing_id"] == two_mailings[0]
    assert (report["phone"], report["text"]) == ("79160000001", "Sale!")
    assert (report["status"], report["attempts"]) == ("sent", 1)
    assert (report["provider"], report["provider_message_id"]) == ("smsaero", "8412033")
    assert report["sent_at"] == "2030-01-15T12:00:00Z"


@pytest.mark.parametrize(
    "filters",
    [{}, {"mailing": True}, {"mailing": True, "status": "sent"}, {"status": "sent"}, {"phone": ""}],
)
async def test_a_page_shows_each_report_as_reading_it_does(
    client: httpx.AsyncClient,
    arrange: Arrange,
    clock: FakeClock,
    two_mailings: list[int],
    filters: dict[str, Any],
) -> None:
    """Pages are read as rows of the columns shown: each shape gives what GET /reports/{id} does."""
    first = (await arrange.reports(two_mailings[0]))[0]
    await arrange.reports_in(
        ReportStatus.SENT,
        [first.id],
        attempts=1,
        sent_at=clock.now(),
        provider="smsaero",
        provider_message_id="8412033",
    )
    params = {
        "mailing_id": two_mailings[0] if filters.get("mailing") else None,
        "status": filters.get("status"),
        "phone": "79160000001" if "phone" in filters else None,
    }
    page = await client.get(
        "/api/v1/reports", params={key: value for key, value in params.items() if value}
    )
    one = await client.get(f"/api/v1/reports/{first.id}")

    [shown] = [report for report in page.json()["items"] if report["id"] == first.id]
    assert shown == one.json()
    assert set(shown) == REPORT_FIELDS


async def test_missing_report_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/reports/4242")
    assert response.status_code == 404
    assert response.json()["detail"] == "report 4242 does not exist"


async def test_report_outlives_its_client(
    client: httpx.AsyncClient, two_mailings: list[int]
) -> None:
    [leaving] = {report["client_id"] for report in await _reports(client, phone="79160000001")}
    assert (await client.delete(f"/api/v1/clients/{leaving}")).status_code == 204
    reports = await _reports(client, phone="79160000001")
    assert len(reports) == 2
    assert {report["client_id"] for report in reports} == {None}
    assert {report["status"] for report in reports} == {"cancelled"}
    assert {report["text"] for report in reports} == {"Sale!"}


async def test_a_phone_finds_the_reports_made_under_it_after_its_client_changed_phone(
    client: httpx.AsyncClient, arrange: Arrange, two_mailings: list[int]
) -> None:
    """Reports are found by phone through their client: the current one, earlier ones, none."""
    [moving] = {report["client_id"] for report in await _reports(client, phone="79160000001")}
    changed = await client.patch(f"/api/v1/clients/{moving}", json={"phone": "79160000009"})
    assert changed.status_code == 200, changed.text
    message_id = await arrange.message("After the move")
    third = await arrange.mailing(message_id=message_id)
    # The old phone is free again: a new client takes it and gets a report of its own.
    taken = await client.post("/api/v1/clients", json={"phone": "79160000001"})
    assert taken.status_code == 201, taken.text
    fourth = await arrange.mailing(message_id=message_id)

    old = await _pages_of_one(client, phone="79160000001")
    assert _made(old) == [
        (two_mailings[0], moving),
        (two_mailings[1], moving),
        (fourth, taken.json()["id"]),
    ]
    new = await _reports(client, phone="79160000009")
    assert _made(new) == [(third, moving), (fourth, moving)]
    assert await _reports(client, phone="79160000009", mailing_id=two_mailings[0]) == []

    assert (await client.delete(f"/api/v1/clients/{moving}")).status_code == 204
    old_after = await _reports(client, phone="79160000001")
    assert _made(old_after) == [
        (two_mailings[0], None),
        (two_mailings[1], None),
        (fourth, taken.json()["id"]),
    ]
    assert _made(await _reports(client, phone="79160000009")) == [(third, None), (fourth, None)]


def _made(reports: list[dict[str, Any]]) -> list[tuple[int, int | None]]:
    """(mailing, client) of each report, once the reports are seen to come in id order.

    PostgreSQL hands out report ids in blocks per connection, so id order is not the order
    in which the mailings were made.
    """
    ids = [report["id"] for report in reports]
    assert ids == sorted(ids), ids
    return sorted((report["mailing_id"], report["client_id"]) for report in reports)


async def test_list_filters_combine(
    client: httpx.AsyncClient, arrange: Arrange, two_mailings: list[int]
) -> None:
    first_mailing, second_mailing = two_mailings
    delivered = [report.id for report in await arrange.reports(first_mailing)][:2]
    await arrange.reports_in(ReportStatus.DELIVERED, delivered)

    assert len(await _reports(client)) == 6
    assert {r["mailing_id"] for r in await _reports(client, mailing_id=second_mailing)} == {
        second_mailing
    }
    assert [r["id"] for r in await _reports(client, status="delivered")] == delivered
    by_phone = await _reports(client, phone="79260000003")
    assert {(r["mailing_id"], r["phone"]) for r in by_phone} == {
        (first_mailing, "79260000003"),
        (second_mailing, "79260000003"),
    }
    both = await _reports(client, mailing_id=first_mailing, status="pending", phone="79260000003")
    assert [(r["mailing_id"], r["phone"], r["status"]) for r in both] == [
        (first_mailing, "79260000003", "pending")
    ]
    assert await _reports(client, mailing_id=first_mailing + second_mailing) == []


async def test_list_pages_through_a_filtered_set(
    client: httpx.AsyncClient, two_mailings: list[int]
) -> None:
    mailing_id = two_mailings[1]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"mailing_id": mailing_id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/reports", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = await _reports(client, mailing_id=mailing_id)
    assert seen == [report["id"] for report in everything]
    assert len(seen) == len(CLIENTS)
    assert pages == 2


@pytest.mark.parametrize(
    ("params", "loc", "words"),
    [
        ({"status": "lost"}, ["query", "status"], "'pending'"),
        ({"status": "lost"}, ["query", "status"], "'unknown'"),
        ({"phone": "89160000001"}, ["query", "phone"], "pattern"),
        ({"phone": "7916"}, ["query", "phone"], "pattern"),
        ({"mailing_id": "abc"}, ["query", "mailing_id"], "integer"),
        ({"mailing_id": str(2**63)}, ["query", "mailing_id"], ""),
    ],
)
async def test_bad_filters_are_422(
    client: httpx.AsyncClient, params: dict[str, str], loc: list[str], words: str
) -> None:
    response = await client.get("/api/v1/reports", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == loc
    assert words in response.json()["detail"]
