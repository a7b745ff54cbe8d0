"""A change made in the console is audited under the user's name; admins read the log there."""

from __future__ import annotations

import httpx
import pytest

from sms_sender.auth.models import Role
from tests.admin.conftest import SignedIn, page_csrf
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_a_console_change_is_audited_as_the_user_and_shown_to_admins(
    signed_in: SignedIn, client: httpx.AsyncClient, auditor: httpx.AsyncClient, clock: FakeClock
) -> None:
    console = await signed_in(Role.ADMIN)
    csrf = await page_csrf(console)
    made = await console.post("/admin/messages/new", data={"csrf_token": csrf, "text": "Sale"})
    assert made.status_code == 303, made.text
    message_id = int(made.headers["location"].split("/")[-1].split("?")[0])
    via_api = await client.post("/api/v1/messages", json={"text": "From the API"})
    assert via_api.status_code == 201

    entries = (await auditor.get("/api/v1/audit", params={"target": "message"})).json()["items"]
    assert [(e["actor"], e["source"], e["action"]) for e in entries] == [
        ("tests", "api", "created"),
        ("user-admin", "admin", "created"),
    ]
    assert entries[1]["target_id"] == message_id

    page = await console.get("/admin/audit", params={"source": "", "target": "message"})
    assert page.status_code == 200
    assert "user-admin" in page.text
    assert f'href="/admin/messages/{message_id}">#{message_id}</a>' in page.text
    only_api = await console.get("/admin/audit", params={"actor": "tests"})
    assert "user-admin" not in only_api.text.split("<table>", 1)[-1]
    assert (
        "No entries match these filters."
        in (await console.get("/admin/audit", params={"action": "deleted"})).text
    )


async def test_only_admins_read_the_audit_log(signed_in: SignedIn) -> None:
    operator = await signed_in(Role.OPERATOR)
    assert (await operator.get("/admin/audit")).status_code == 403
