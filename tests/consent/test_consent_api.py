"""Consent and opt-out through the API: fan-out, preview, opt-out, suppression, history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.consent.models import Suppression
from sms_sender.models import Report, ReportStatus
from tests.arrange import Arrange
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

AGREED, SILENT, STOPPED = "79001110001", "79001110002", "79001110003"


async def _client(client: httpx.AsyncClient, phone: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/clients", json={"phone": phone, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _opt_out(client: httpx.AsyncClient, client_id: int, source: str = "call") -> None:
    response = await client.post(f"/api/v1/clients/{client_id}/opt-out", json={"source": source})
    assert response.status_code == 200, response.text


async def _three_clients(client: httpx.AsyncClient, clock: FakeClock) -> dict[str, int]:
    """One who agreed to advertising, one who said nothing, one who opted out."""
    agreed_at = (clock.now() - timedelta(days=3)).isoformat()
    ids = {
        AGREED: (await _client(client, AGREED, consent_at=agreed_at, consent_source="shop"))["id"],
        SILENT: (await _client(client, SILENT))["id"],
        STOPPED: (await _client(client, STOPPED))["id"],
    }
    await _opt_out(client, ids[STOPPED])
    return ids


async def _post_mailing(
    client: httpx.AsyncClient, clock: FakeClock, message_id: int, **fields: Any
) -> dict[str, Any]:
    """POST /mailings for a mailing running now for two hours, to every client."""
    body = {
        "start_at": clock.now().isoformat(),
        "end_at": (clock.now() + timedelta(hours=2)).isoformat(),
        "message_id": message_id,
        "filter": {},
    }
    response = await client.post("/api/v1/mailings", json=body | fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _outcomes(reports: list[Report]) -> dict[str, tuple[str, str | None]]:
    return {report.phone: (report.status, report.error) for report in reports}


async def test_advertising_skips_clients_without_consent_and_opted_out(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock
) -> None:
    await _three_clients(client, clock)
    message_id = await arrange.message()
    mailing = await _post_mailing(client, clock, message_id, purpose="advertising")
    assert mailing["purpose"] == "advertising"

    assert _outcomes(await arrange.reports(mailing["id"])) == {
        AGREED: ("pending", None),
        SILENT: ("skipped", "no_consent"),
        STOPPED: ("skipped", "opted_out"),
    }
    stats = (await client.get(f"/api/v1/mailings/{mailing['id']}/stats")).json()
    assert stats["total"] == 3
    assert stats["by_status"]["skipped"] == 2
    assert stats["skipped_by_reason"] == {"no_consent": 1, "opted_out": 1}


async def test_a_service_mailing_skips_only_the_opted_out(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock
) -> None:
    await _three_clients(client, clock)
    mailing = await _post_mailing(client, clock, await arrange.message())
    assert mailing["purpose"] == "service"  # the default: existing API users keep working

    assert _outcomes(await arrange.reports(mailing["id"])) == {
        AGREED: ("pending", None),
        SILENT: ("pending", None),
        STOPPED: ("skipped", "opted_out"),
    }


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        ("advertising", {"matching": 3, "will_send": 1, "no_consent": 1, "opted_out": 1}),
        ("service", {"matching": 3, "will_send": 2, "no_consent": 0, "opted_out": 1}),
    ],
)
async def test_preview_counts_whom_a_mailing_would_skip(
    client: httpx.AsyncClient, clock: FakeClock, purpose: str, expected: dict[str, int]
) -> None:
    await _three_clients(client, clock)
    await _client(client, "79161110004", tag="elsewhere")  # not matched by the filter

    response = await client.post(
        "/api/v1/mailings/preview",
        json={"filter": {"operator_codes": ["900"]}, "purpose": purpose},
    )

    assert response.status_code == 200, response.text
    preview = response.json()
    assert {
        "matching": preview["matching"],
        "will_send": preview["will_send"],
        **preview["skipped"],
    } == expected


async def test_opt_out_skips_unsent_reports_of_a_running_mailing(
    client: httpx.AsyncClient, arrange: Arrange
) -> None:
    first = await _client(client, AGREED)
    await _client(client, SILENT)
    mailing_id = await arrange.mailing(lasts=timedelta(hours=2))

    await _opt_out(client, first["id"], source="asked by phone")

    assert _outcomes(await arrange.reports(mailing_id)) == {
        AGREED: ("skipped", "opted_out"),
        SILENT: ("pending", None),
    }
    stored = (await client.get(f"/api/v1/clients/{first['id']}")).json()
    assert stored["opted_out_at"] is not None
    assert stored["opt_out_source"] == "asked by phone"


async def test_opt_out_by_phone_suppresses_a_phone_no_client_has(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await client.post(
        "/api/v1/clients/opt-out", json={"phone": SILENT, "source": "e-mail"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"phone": SILENT, "client_id": None}
    # The phone itself is never stored, only its keyed hash.
    hashes = list(await session.scalars(select(Suppression.phone_hash)))
    await session.commit()
    assert len(hashes) == 1
    assert SILENT not in hashes[0]

    added = await _client(client, SILENT)
    assert added["opted_out_at"] is not None


async def test_a_deleted_client_who_opted_out_stays_out_when_imported_again(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    stopped = await _client(client, STOPPED)
    await _opt_out(client, stopped["id"])
    assert (await client.delete(f"/api/v1/clients/{stopped['id']}")).status_code == 204

    response = await client.post(
        "/api/v1/clients/import",
        content=f"phone,operator_code,tag,timezone\n{STOPPED},,,\n{SILENT},,,\n",
        headers={"Content-Type": "text/csv"},
    )
    assert response.json()["imported"] == 2

    listed = (await client.get("/api/v1/clients")).json()["items"]
    opted_out = {item["phone"]: item["opted_out_at"] is not None for item in listed}
    assert opted_out == {STOPPED: True, SILENT: False}
    again = next(item for item in listed if item["phone"] == STOPPED)
    history = (await client.get(f"/api/v1/clients/{again['id']}/consent-history")).json()
    assert [(e["change"], e["actor"]) for e in history["items"]] == [
        ("opted_out", "suppression list")
    ]


async def test_a_consent_given_after_the_opt_out_clears_it(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    stopped = await _client(client, STOPPED)
    await _opt_out(client, stopped["id"])
    await client.delete(f"/api/v1/clients/{stopped['id']}")
    older = (clock.now() - timedelta(days=1)).isoformat()

    # A consent older than the opt-out (say, from an old CRM export) does not bring it back.
    stale = await _client(client, STOPPED, consent_at=older, consent_source="old CRM")
    assert stale["opted_out_at"] is not None

    clock.advance(minutes=5)
    response = await client.patch(
        f"/api/v1/clients/{stale['id']}",
        json={"consent_at": clock.now().isoformat(), "consent_source": "web form, re-subscribed"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["opted_out_at"] is None
    assert response.json()["consent_source"] == "web form, re-subscribed"

    # The suppression entry went with it: deleted and added again, the phone is not opted out.
    await client.delete(f"/api/v1/clients/{stale['id']}")
    assert (await _client(client, STOPPED))["opted_out_at"] is None


async def test_a_suppressed_phone_added_again_keeps_the_opt_out_unless_consent_is_later(
    client: httpx.AsyncClient, session: AsyncSession, clock: FakeClock
) -> None:
    """POST /clients reads the suppression entry in its own INSERT; the rule is the same."""
    for phone in (STOPPED, SILENT):
        stopped = await _client(client, phone)
        await _opt_out(client, stopped["id"], source="sms STOP")
        assert (await client.delete(f"/api/v1/clients/{stopped['id']}")).status_code == 204
    opted_out_at = clock.now()
    clock.advance(minutes=5)

    kept = await _client(client, STOPPED, tag="back")
    assert (kept["opted_out_at"], kept["opt_out_source"], kept["tag"]) == (
        opted_out_at.isoformat().replace("+00:00", "Z"),
        "suppression list: sms STOP",
        "back",
    )
    again = await _client(
        client, SILENT, consent_at=clock.now().isoformat(), consent_source="web form"
    )
    assert (again["opted_out_at"], again["consent_source"]) == (None, "web form")

    def history(created: dict[str, Any]) -> Any:
        return client.get(f"/api/v1/clients/{created['id']}/consent-history")

    kept_history = (await history(kept)).json()["items"]
    assert [(e["change"], e["actor"]) for e in kept_history] == [("opted_out", "suppression list")]
    again_history = (await history(again)).json()["items"]
    assert [(e["change"], e["actor"]) for e in again_history] == [
        ("opted_out", "suppression list"),
        ("consent_given", "api:tests"),
        ("opt_out_cleared", "api:tests"),
    ]
    # The later consent ended the entry; the other phone stays listed.
    assert await session.scalar(select(func.count()).select_from(Suppression)) == 1
    await session.commit()


async def test_every_change_is_in_the_history_with_who_made_it(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    created = await _client(
        client, AGREED, consent_at=clock.now().isoformat(), consent_source="shop, paper form"
    )
    clock.advance(minutes=1)
    await _opt_out(client, created["id"], source="asked the cashier")
    clock.advance(minutes=1)
    await client.patch(
        f"/api/v1/clients/{created['id']}",
        json={"consent_at": clock.now().isoformat(), "consent_source": "app"},
    )
    clock.advance(minutes=1)
    await client.patch(f"/api/v1/clients/{created['id']}", json={"consent_at": None})

    url = f"/api/v1/clients/{created['id']}/consent-history"
    first = (await client.get(url, params={"limit": 3})).json()
    rest = (await client.get(url, params={"cursor": first["next_cursor"]})).json()
    events = first["items"] + rest["items"]
    assert [(e["change"], e["source"]) for e in events] == [
        ("consent_given", "shop, paper form"),
        ("opted_out", "asked the cashier"),
        ("consent_given", "app"),
        ("opt_out_cleared", "app"),
        ("consent_withdrawn", None),
    ]
    assert {e["actor"] for e in events} == {"api:tests"}
    assert rest["next_cursor"] is None


async def test_consent_needs_its_source_and_cannot_be_in_the_future(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    no_source = await client.post(
        "/api/v1/clients", json={"phone": AGREED, "consent_at": clock.now().isoformat()}
    )
    assert no_source.status_code == 422
    assert "consent_source" in no_source.json()["detail"]
    future = (clock.now() + timedelta(days=1)).isoformat()
    ahead = await client.post(
        "/api/v1/clients",
        json={"phone": AGREED, "consent_at": future, "consent_source": "form"},
    )
    assert ahead.status_code == 422
    assert "future" in ahead.json()["detail"]


async def test_a_stop_list_opts_out_every_valid_phone(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    known = await _client(client, AGREED)
    response = await client.post(
        "/api/v1/clients/opt-out/import",
        params={"source": "operator's complaint list"},
        content=f"phone\n{AGREED}\nnot-a-phone\n{SILENT}\n\n{AGREED}\n",
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["phones"], result["clients"]) == (2, 1)
    assert [error["line"] for error in result["errors"]] == [3]
    stored = (await client.get(f"/api/v1/clients/{known['id']}")).json()
    assert stored["opt_out_source"] == "operator's complaint list"
    count = await session.scalar(select(func.count()).select_from(Suppression))
    await session.commit()
    assert count == 2


async def test_a_stop_list_needs_its_header(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/clients/opt-out/import",
        content=f"{AGREED}\n",
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    assert "header phone" in response.json()["detail"]
    assert response.json()["code"] == "stop_list_header"
    assert response.json()["errors"][0]["code"] == "stop_list_header"


@pytest.mark.parametrize(
    ("content_type", "code", "said"),
    [
        ("application/json", "stop_list_media_type", "not application/json"),
        (None, "stop_list_no_media_type", "without Content-Type"),
    ],
)
async def test_a_stop_list_is_text_csv(
    client: httpx.AsyncClient, content_type: str | None, code: str, said: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(
        "/api/v1/clients/opt-out/import", content=f"phone\n{AGREED}\n", headers=headers
    )
    assert response.status_code == 415
    assert response.json()["code"] == code
    assert said in response.json()["detail"]


async def test_an_opted_out_client_gets_nothing_from_a_later_mailing(
    client: httpx.AsyncClient, arrange: Arrange
) -> None:
    stopped = await _client(client, STOPPED)
    await _opt_out(client, stopped["id"])
    reports = await arrange.reports(await arrange.mailing(lasts=timedelta(hours=2)))
    assert [report.status for report in reports] == [ReportStatus.SKIPPED]


async def test_a_rejected_repeat_of_a_phone_gives_its_client_no_consent(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    earlier = (clock.now() - timedelta(days=1)).isoformat()
    csv = "\n".join(
        [
            "phone,operator_code,tag,timezone,consent_at,consent_source",
            f"{SILENT},,,,,",
            f"{SILENT},,,,{earlier},paper form",  # rejected: the phone is on line 2
        ]
    )
    response = await client.post(
        "/api/v1/clients/import", content=csv + "\n", headers={"Content-Type": "text/csv"}
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["imported"], result["failed"]) == (1, 1)
    assert result["errors"][0]["line"] == 3
    [item] = (await client.get("/api/v1/clients")).json()["items"]
    assert (item["consent_at"], item["consent_source"]) == (None, None)
    history = (await client.get(f"/api/v1/clients/{item['id']}/consent-history")).json()
    assert history["items"] == []


async def test_the_client_import_takes_optional_consent_columns(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    stopped = await _client(client, STOPPED)
    await _opt_out(client, stopped["id"])
    await client.delete(f"/api/v1/clients/{stopped['id']}")
    earlier = (clock.now() - timedelta(days=1)).isoformat()
    later = clock.advance(minutes=1).isoformat()
    csv = "\n".join(
        [
            "phone,operator_code,tag,timezone,consent_at,consent_source",
            f"{AGREED},,,,{earlier},paper form",
            f"{SILENT},,,,,",
            f"79001110005,,,,{earlier},",  # a consent without its source
            f"{STOPPED},,,,{later},re-subscribed on the site",  # after the opt-out: ends it
        ]
    )
    response = await client.post(
        "/api/v1/clients/import", content=csv + "\n", headers={"Content-Type": "text/csv"}
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["imported"], result["failed"]) == (3, 1)
    assert "consent_source" in result["errors"][0]["error"]
    listed = {item["phone"]: item for item in (await client.get("/api/v1/clients")).json()["items"]}
    assert listed[AGREED]["consent_source"] == "paper form"
    assert listed[SILENT]["consent_at"] is None
    assert listed[STOPPED]["opted_out_at"] is None
    history = (await client.get(f"/api/v1/clients/{listed[STOPPED]['id']}/consent-history")).json()
    assert [event["change"] for event in history["items"]] == [
        "opted_out",
        "consent_given",
        "opt_out_cleared",
    ]
