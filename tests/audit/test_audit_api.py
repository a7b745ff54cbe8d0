"""Every change made through the API leaves an audit entry naming the token, the thing and when."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.audit.actor import SYSTEM, current_actor
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.service import record
from sms_sender.auth import service as auth_service
from tests.conftest import FakeClock
from tests.dispatch.test_logging import json_log_lines  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("clean_db")


async def _post_message(client: httpx.AsyncClient, text: str = "Winter sale -20%") -> int:
    """POST /messages, itself an audited change: the new message's id."""
    response = await client.post("/api/v1/messages", json={"text": text})
    assert response.status_code == 201, response.text
    message_id: int = response.json()["id"]
    return message_id


def _mailing_body(message_id: int, start_at: datetime) -> dict[str, Any]:
    """A POST /mailings body for two hours from ``start_at``, to every client."""
    return {
        "start_at": start_at.isoformat(),
        "end_at": (start_at + timedelta(hours=2)).isoformat(),
        "message_id": message_id,
        "filter": {},
    }


async def _entries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_only_a_token_made_to_read_the_audit_log_may(
    anon_client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    async with sessionmaker() as session:
        plain = await auth_service.create_token(session, "crm-sync", clock.now())
        reader = await auth_service.create_token(session, "siem", clock.now(), reads_audit=True)
        await session.commit()
    refused = await anon_client.get("/api/v1/audit", headers={"Authorization": f"Bearer {plain}"})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "may not read the audit log" in refused.json()["detail"]
    assert "--audit" in refused.json()["detail"]
    # The same token still does everything else.
    other = await anon_client.get("/api/v1/messages", headers={"Authorization": f"Bearer {plain}"})
    assert other.status_code == 200
    allowed = await anon_client.get("/api/v1/audit", headers={"Authorization": f"Bearer {reader}"})
    assert allowed.status_code == 200, allowed.text
    created = [entry["detail"] for entry in allowed.json()["items"]]
    assert created == ["siem (reads the audit log)", "crm-sync"]


async def test_api_changes_are_audited_with_the_token_name(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    created = await client.post("/api/v1/clients", json={"phone": "79001234567"})
    client_id = created.json()["id"]
    assert (await client.patch(f"/api/v1/clients/{client_id}", json={"tag": "vip"})).is_success
    message_id = await _post_message(client)
    clock.advance(minutes=1)
    body = _mailing_body(message_id, clock.now() + timedelta(hours=1))
    mailing_id = (await client.post("/api/v1/mailings", json=body)).json()["id"]
    for action in ("pause", "resume", "cancel"):
        response = await client.post(f"/api/v1/mailings/{mailing_id}/{action}")
        assert response.status_code == 200, response.text
    assert (await client.delete(f"/api/v1/mailings/{mailing_id}")).status_code == 204
    assert (await client.delete(f"/api/v1/clients/{client_id}")).status_code == 204

    entries = await _entries(client, actor="tests")
    seen = [(e["action"], e["target"], e["target_id"]) for e in reversed(entries)]
    assert seen == [
        ("created", "client", client_id),
        ("changed", "client", client_id),
        ("created", "message", message_id),
        ("created", "mailing", mailing_id),
        ("paused", "mailing", mailing_id),
        ("resumed", "mailing", mailing_id),
        ("cancelled", "mailing", mailing_id),
        ("deleted", "mailing", mailing_id),
        ("deleted", "client", client_id),
    ]
    assert {e["source"] for e in entries} == {"api"}
    assert entries[-3]["at"] == "2030-01-15T12:00:00Z"  # the message, before the clock moved
    assert entries[0]["at"] == "2030-01-15T12:01:00Z"
    assert [e["detail"] for e in entries if e["action"] == "changed"] == ["tag"]


async def test_resend_unknown_is_audited_with_how_many_went_again(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    message_id = await _post_message(client)
    body = _mailing_body(message_id, clock.now())
    mailing_id = (await client.post("/api/v1/mailings", json=body)).json()["id"]
    response = await client.post(f"/api/v1/mailings/{mailing_id}/resend-unknown")
    assert response.status_code == 200, response.text
    (entry,) = await _entries(client, action="resent")
    assert (entry["target"], entry["target_id"], entry["actor"]) == ("mailing", mailing_id, "tests")
    assert entry["detail"] == "0 unknown reports queued again"


async def test_a_refused_change_leaves_no_entry(client: httpx.AsyncClient) -> None:
    message_id = await _post_message(client)
    response = await client.patch(f"/api/v1/messages/{message_id}", json={"text": ""})
    assert response.status_code == 422
    other = await client.post("/api/v1/clients", json={"phone": "79001234567"})
    duplicate = await client.post("/api/v1/clients", json={"phone": "79001234567"})
    assert duplicate.status_code == 409
    entries = await _entries(client, actor="tests")
    assert [(e["action"], e["target"]) for e in entries] == [
        ("created", "client"),
        ("created", "message"),
    ]
    assert entries[0]["target_id"] == other.json()["id"]


async def test_an_import_is_one_entry_with_its_counts(client: httpx.AsyncClient) -> None:
    csv = "phone,operator_code,tag,timezone\n79001234567,,,\nnot-a-phone,,,\n"
    response = await client.post(
        "/api/v1/clients/import", content=csv, headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    (entry,) = await _entries(client, actor="tests")
    assert (entry["action"], entry["target"], entry["target_id"]) == ("imported", "client", None)
    assert entry["detail"] == "1 clients imported, 1 rows rejected"


async def test_the_log_is_paged_newest_first_and_filtered(client: httpx.AsyncClient) -> None:
    ids = [await _post_message(client, f"text {n}") for n in range(5)]
    pages = [(await client.get("/api/v1/audit", params={"limit": 2, "target": "message"})).json()]
    while pages[-1]["next_cursor"]:
        params = {"limit": 2, "target": "message", "cursor": pages[-1]["next_cursor"]}
        pages.append((await client.get("/api/v1/audit", params=params)).json())
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [e["target_id"] for p in pages for e in p["items"]] == ids[::-1]
    assert (await client.delete(f"/api/v1/messages/{ids[2]}")).status_code == 204
    only = await _entries(client, target="message", target_id=ids[2])
    assert [e["action"] for e in only] == ["deleted", "created"]
    assert [e["target_id"] for e in await _entries(client, action="deleted")] == [ids[2]]
    assert await _entries(client, actor="someone else") == []
    bad = await client.get("/api/v1/audit", params={"action": "exploded"})
    assert bad.status_code == 422


async def test_the_log_line_carries_the_ids(
    client: httpx.AsyncClient,
    json_log_lines: io.StringIO,  # noqa: F811
) -> None:
    message_id = await _post_message(client)
    logs = [json.loads(line) for line in json_log_lines.getvalue().splitlines()]
    (line,) = [log for log in logs if log["event"] == "audit"]
    assert line["message_id"] == message_id
    assert (line["action"], line["actor"], line["source"]) == ("created", "tests", "api")


async def test_a_new_client_and_its_entry_are_written_together(
    client: httpx.AsyncClient,
    json_log_lines: io.StringIO,  # noqa: F811
) -> None:
    """POST /clients writes the entry in the client's own statement (two on SQLite)."""
    first = (await client.post("/api/v1/clients", json={"phone": "79001234567"})).json()
    taken = await client.post("/api/v1/clients", json={"phone": "79001234567", "tag": "again"})
    assert taken.status_code == 409
    second = (await client.post("/api/v1/clients", json={"phone": "79001234568"})).json()

    entries = await _entries(client, target="client")
    assert [(e["action"], e["target_id"], e["actor"]) for e in reversed(entries)] == [
        ("created", first["id"], "tests"),
        ("created", second["id"], "tests"),
    ]
    logs = [json.loads(line) for line in json_log_lines.getvalue().splitlines()]
    lines = [log for log in logs if log["event"] == "audit"]
    assert [(line["client_id"], line["audit_id"]) for line in lines] == [
        (first["id"], entries[1]["id"]),
        (second["id"], entries[0]["id"]),
    ]


async def test_tokens_made_outside_a_request_are_by_the_system(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await _post_message(client)  # a request bound its token as the actor ...
    assert current_actor() == SYSTEM  # ... for that request only
    async with sessionmaker() as session:
        await auth_service.create_token(session, "robot", clock.now())
        await auth_service.revoke_token(session, "robot", clock.now())
        await session.commit()
    entries = await _entries(client, target="token", actor="system")
    assert [(e["action"], e["detail"], e["source"]) for e in entries][:2] == [
        ("revoked", "robot", "system"),
        ("created", "robot", "system"),
    ]


async def test_a_change_undone_is_not_logged(
    sessionmaker: async_sessionmaker[AsyncSession],
    json_log_lines: io.StringIO,  # noqa: F811
) -> None:
    async with sessionmaker() as session:
        await record(session, AuditAction.DELETED, AuditTarget.CLIENT, 7)
        await session.rollback()
        await record(session, AuditAction.DELETED, AuditTarget.CLIENT, 8)
        await session.commit()
    logs = [json.loads(line) for line in json_log_lines.getvalue().splitlines()]
    assert [log["client_id"] for log in logs if log["event"] == "audit"] == [8]
