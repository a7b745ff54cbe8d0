from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sms_sender.config import Settings
from sms_sender.models import Client, Mailing, MailingStatus, Message, Report, ReportStatus
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

CLIENTS = "/api/v1/clients"
# Digits to Python's \d, but not to a phone network.
ARABIC_INDIC_PHONE = "7" + "".join(chr(0x0660 + digit) for digit in (9, 0, 0, 1, 2, 3, 4, 5, 6, 7))


async def create(client: httpx.AsyncClient, phone: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(CLIENTS, json={"phone": phone, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_applies_defaults_and_reads_back(client: httpx.AsyncClient) -> None:
    created = await client.post(CLIENTS, json={"phone": "79161234567"})
    assert created.status_code == 201
    body = created.json()
    assert body["phone"] == "79161234567"
    assert body["operator_code"] == "916"
    assert body["tag"] is None
    assert body["timezone"] == "UTC"
    assert body["created_at"] == body["updated_at"] == "2030-01-15T12:00:00Z"

    read = await client.get(f"{CLIENTS}/{body['id']}")
    assert read.status_code == 200
    assert read.json() == body


async def test_create_keeps_every_given_field(client: httpx.AsyncClient) -> None:
    body = await create(
        client, "79001234567", operator_code="123", tag="vip", timezone="Asia/Vladivostok"
    )
    assert (body["operator_code"], body["tag"], body["timezone"]) == (
        "123",
        "vip",
        "Asia/Vladivostok",
    )


async def test_default_timezone_comes_from_settings(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"default_timezone": "Europe/Moscow"})
    assert (await create(client, "79001234567"))["timezone"] == "Europe/Moscow"


@pytest.mark.parametrize(
    ("phone", "stored"), [(79001234567, "79001234567"), ("79001234567", "79001234567")]
)
async def test_phone_may_be_a_json_string_or_number(
    client: httpx.AsyncClient, phone: object, stored: str
) -> None:
    response = await client.post(CLIENTS, json={"phone": phone})
    assert response.status_code == 201
    assert response.json()["phone"] == stored


async def test_empty_tag_is_no_tag(client: httpx.AsyncClient) -> None:
    assert (await create(client, "79001234567", tag=""))["tag"] is None


@pytest.mark.parametrize(
    ("payload", "loc", "message"),
    [
        ({"phone": "7900123456"}, "phone", "must be 11 digits starting with 7"),
        ({"phone": "790012345678"}, "phone", "must be 11 digits starting with 7"),
        ({"phone": "89001234567"}, "phone", "must be 11 digits starting with 7"),
        ({"phone": "+79001234567"}, "phone", "no +, spaces or dashes"),
        ({"phone": "7900-123-456"}, "phone", "must be 11 digits starting with 7"),
        ({"phone": "7900123456x"}, "phone", "must be 11 digits starting with 7"),
        ({"phone": ARABIC_INDIC_PHONE}, "phone", "must be 11 digits starting with 7"),
        ({"phone": 89001234567}, "phone", "must be 11 digits starting with 7"),
        ({"phone": True}, "phone", "valid string"),
        ({"phone": 79001234567.0}, "phone", "valid string"),
        ({"phone": None}, "phone", "valid string"),
        ({}, "phone", "Field required"),
        ({"phone": "79001234567", "operator_code": "90"}, "operator_code", "must be 3 digits"),
        ({"phone": "79001234567", "operator_code": "9000"}, "operator_code", "must be 3 digits"),
        ({"phone": "79001234567", "operator_code": "abc"}, "operator_code", "must be 3 digits"),
        ({"phone": "79001234567", "timezone": "Mars/Olympus"}, "timezone", "IANA time zone"),
        ({"phone": "79001234567", "timezone": "europe/moscow"}, "timezone", "case-sensitive"),
        ({"phone": "79001234567", "timezone": ""}, "timezone", "IANA time zone"),
        ({"phone": "79001234567", "tag": "x" * 65}, "tag", "at most 64 characters"),
        ({"phone": "79001234567", "colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
async def test_invalid_client_is_422_and_stores_nothing(
    client: httpx.AsyncClient, payload: dict[str, object], loc: str, message: str
) -> None:
    response = await client.post(CLIENTS, json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["loc"][:2] == ["body", loc]
    assert message in problem["errors"][0]["msg"]
    assert message in problem["detail"]
    assert (await client.get(CLIENTS)).json()["items"] == []


async def test_tag_of_64_characters_is_fine(client: httpx.AsyncClient) -> None:
    assert (await create(client, "79001234567", tag="x" * 64))["tag"] == "x" * 64


async def test_duplicate_phone_is_409_naming_the_owner(client: httpx.AsyncClient) -> None:
    first = await create(client, "79001234567")
    response = await client.post(CLIENTS, json={"phone": "79001234567", "tag": "again"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith(
        f"phone 79001234567 already belongs to client {first['id']}"
    )
    assert len((await client.get(CLIENTS)).json()["items"]) == 1


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    original = await create(client, "79001234567", tag="new", timezone="Europe/Moscow")
    clock.advance(minutes=5)
    response = await client.patch(f"{CLIENTS}/{original['id']}", json={"tag": "vip"})
    assert response.status_code == 200
    patched = response.json()
    assert patched == original | {"tag": "vip", "updated_at": "2030-01-15T12:05:00Z"}

    moved = await client.patch(f"{CLIENTS}/{original['id']}", json={"phone": "79161234567"})
    assert moved.json()["phone"] == "79161234567"
    assert moved.json()["operator_code"] == "900", "PATCH does not re-derive operator_code"

    cleared = await client.patch(f"{CLIENTS}/{original['id']}", json={"tag": None})
    assert cleared.json()["tag"] is None
    assert cleared.json()["timezone"] == "Europe/Moscow"


@pytest.mark.parametrize("field", ["phone", "operator_code", "timezone"])
async def test_patch_refuses_null_for_required_fields(
    client: httpx.AsyncClient, field: str
) -> None:
    original = await create(client, "79001234567")
    response = await client.patch(f"{CLIENTS}/{original['id']}", json={field: None})
    assert response.status_code == 422
    assert f"{field} cannot be null" in response.json()["detail"]
    assert (await client.get(f"{CLIENTS}/{original['id']}")).json() == original


async def test_patch_validates_like_create(client: httpx.AsyncClient) -> None:
    original = await create(client, "79001234567")
    for payload in ({"phone": "123"}, {"timezone": "Nowhere"}, {"extra": 1}, {"tag": "y" * 65}):
        response = await client.patch(f"{CLIENTS}/{original['id']}", json=payload)
        assert response.status_code == 422, payload
    assert (await client.get(f"{CLIENTS}/{original['id']}")).json() == original


async def test_put_replaces_everything_and_defaults_the_rest(client: httpx.AsyncClient) -> None:
    original = await create(
        client, "79001234567", operator_code="111", tag="vip", timezone="Asia/Tokyo"
    )
    response = await client.put(f"{CLIENTS}/{original['id']}", json={"phone": "79261234567"})
    assert response.status_code == 200
    replaced = response.json()
    assert replaced["id"] == original["id"]
    assert (replaced["phone"], replaced["operator_code"], replaced["tag"]) == (
        "79261234567",
        "926",
        None,
    )
    assert replaced["timezone"] == "UTC"


async def test_put_needs_a_phone(client: httpx.AsyncClient) -> None:
    original = await create(client, "79001234567")
    response = await client.put(f"{CLIENTS}/{original['id']}", json={"tag": "vip"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "phone"]


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_moving_to_a_taken_phone_is_409_and_changes_nothing(
    client: httpx.AsyncClient, method: str
) -> None:
    owner = await create(client, "79001234567")
    mover = await create(client, "79161234567", tag="before")
    response = await client.request(
        method, f"{CLIENTS}/{mover['id']}", json={"phone": "79001234567", "tag": "after"}
    )
    assert response.status_code == 409
    assert f"already belongs to client {owner['id']}" in response.json()["detail"]
    assert (await client.get(f"{CLIENTS}/{mover['id']}")).json() == mover


async def test_keeping_ones_own_phone_is_not_a_conflict(client: httpx.AsyncClient) -> None:
    original = await create(client, "79001234567")
    response = await client.put(f"{CLIENTS}/{original['id']}", json={"phone": "79001234567"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "payload"),
    [("GET", None), ("PATCH", {"tag": "x"}), ("PUT", {"phone": "79001234567"}), ("DELETE", None)],
)
async def test_unknown_client_is_404(
    client: httpx.AsyncClient, method: str, payload: dict[str, str] | None
) -> None:
    response = await client.request(method, f"{CLIENTS}/999", json=payload)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "client 999 does not exist"


async def test_delete_is_204_and_the_client_is_gone(client: httpx.AsyncClient) -> None:
    created = await create(client, "79001234567")
    response = await client.delete(f"{CLIENTS}/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"{CLIENTS}/{created['id']}")).status_code == 404
    assert (await create(client, "79001234567"))["phone"] == "79001234567", "phone is free again"


async def test_delete_keeps_reports_and_cancels_unsent_ones(
    client: httpx.AsyncClient, session: AsyncSession, clock: FakeClock
) -> None:
    leaving = await create(client, "79001234567")
    staying = await create(client, "79161234567")
    now = clock.now()
    message = Message(text="Hello", created_at=now, updated_at=now)
    session.add(message)
    await session.flush()
    mailings = [
        Mailing(
            start_at=now,
            end_at=now + timedelta(hours=1),
            message_id=message.id,
            status=MailingStatus.RUNNING,
            created_at=now,
            updated_at=now,
        )
        for _ in range(2)
    ]
    session.add_all(mailings)
    await session.flush()

    def report(mailing: Mailing, client_id: int, phone: str, status: ReportStatus) -> Report:
        return Report(
            mailing_id=mailing.id,
            client_id=client_id,
            phone=phone,
            text="Hello",
            timezone="UTC",
            status=status,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )

    session.add_all(
        [
            report(mailings[0], leaving["id"], "79001234567", ReportStatus.PENDING),
            report(mailings[1], leaving["id"], "79001234567", ReportStatus.SENT),
            report(mailings[0], staying["id"], "79161234567", ReportStatus.PENDING),
        ]
    )
    await session.commit()
    clock.advance(minutes=1)

    assert (await client.delete(f"{CLIENTS}/{leaving['id']}")).status_code == 204

    session.expire_all()
    reports = (await session.scalars(select(Report).order_by(Report.id))).all()
    assert [(r.client_id, r.phone, r.status, r.error) for r in reports] == [
        (None, "79001234567", ReportStatus.CANCELLED, "client deleted"),
        (None, "79001234567", ReportStatus.SENT, None),
        (staying["id"], "79161234567", ReportStatus.PENDING, None),
    ]
    assert reports[0].updated_at == clock.now()
    assert await session.scalar(select(Client.phone)) == "79161234567"


async def test_list_filters_by_tag_and_operator_code(client: httpx.AsyncClient) -> None:
    await create(client, "79001000001", tag="vip")
    await create(client, "79001000002", tag="new")
    await create(client, "79161000003", tag="vip")
    await create(client, "79261000004")

    async def phones(**params: Any) -> list[str]:
        response = await client.get(CLIENTS, params=params)
        assert response.status_code == 200
        return [item["phone"] for item in response.json()["items"]]

    assert await phones() == ["79001000001", "79001000002", "79161000003", "79261000004"]
    assert await phones(tag="vip") == ["79001000001", "79161000003"]
    assert await phones(operator_code="900") == ["79001000001", "79001000002"]
    assert await phones(tag="vip", operator_code="916") == ["79161000003"]
    assert await phones(tag=["vip", "new"], operator_code="900") == [
        "79001000001",
        "79001000002",
    ]
    assert await phones(operator_code=["916", "926"]) == ["79161000003", "79261000004"]
    assert await phones(tag="nobody") == []


async def test_list_rejects_a_malformed_operator_code(client: httpx.AsyncClient) -> None:
    response = await client.get(CLIENTS, params={"operator_code": "9"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][:2] == ["query", "operator_code"]


async def test_filtered_list_pages_through_every_match(client: httpx.AsyncClient) -> None:
    expected = []
    for number in range(11):
        tag = "vip" if number % 2 == 0 else "other"
        body = await create(client, f"7900{number:07d}", tag=tag)
        if tag == "vip":
            expected.append(body["phone"])
    await create(client, "79160000000", tag="vip")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, "tag": "vip", "operator_code": "900"}
        page = await client.get(CLIENTS, params=params | ({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200
        seen += [item["phone"] for item in page.json()["items"]]
        pages += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3


async def test_tags_lists_distinct_tags_and_operator_codes_sorted(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/api/v1/tags")).json() == {"tags": [], "operator_codes": []}
    await create(client, "79161000001", tag="vip")
    await create(client, "79001000002", tag="Zeta")
    await create(client, "79001000003", tag="vip")
    await create(client, "79261000004")
    await create(client, "79261000005", tag="alpha", operator_code="111")
    response = await client.get("/api/v1/tags")
    assert response.status_code == 200
    assert response.json() == {
        "tags": ["Zeta", "alpha", "vip"],
        "operator_codes": ["111", "900", "916", "926"],
    }


async def test_tags_are_one_statement(client: httpx.AsyncClient, clean_db: AsyncEngine) -> None:
    """Tags and operator codes come from the counters in one statement (GET /tags is polled)."""
    await create(client, "79161000001", tag="vip")
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(clean_db.sync_engine, "before_cursor_execute", record)
    try:
        response = await client.get("/api/v1/tags")
    finally:
        event.remove(clean_db.sync_engine, "before_cursor_execute", record)
    assert response.json() == {"tags": ["vip"], "operator_codes": ["916"]}
    assert len([sql for sql in statements if "client_facet_counts" in sql]) == 1


async def test_openapi_documents_the_client_schemas(app: FastAPI) -> None:
    schema = app.openapi()
    paths = schema["paths"]
    assert {"/api/v1/clients", "/api/v1/clients/{client_id}", "/api/v1/tags"} <= set(paths)
    import_body = paths["/api/v1/clients/import"]["post"]["requestBody"]["content"]
    assert {"text/csv", "multipart/form-data"} <= set(import_body)
    create_schema = schema["components"]["schemas"]["ClientCreate"]
    assert create_schema["properties"]["phone"]["examples"] == ["79001234567"]
    assert "IANA time zone" in str(create_schema["properties"]["timezone"])
