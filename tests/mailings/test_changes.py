"""Editing, deleting, pausing, resuming and cancelling mailings: what each status allows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sms_sender.dispatch import repository
from sms_sender.reports.models import Report, ReportStatus
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

CLIENTS = [
    ClientSpec("79160000001", tag="vip"),
    ClientSpec("79160000002"),
    ClientSpec("79260000003", operator_code="926", tag="vip"),
]
TWO_HOURS = timedelta(hours=2)


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def _shown(client: httpx.AsyncClient, mailing_id: int) -> dict[str, Any]:
    """The mailing as the API shows it."""
    response = await client.get(f"/api/v1/mailings/{mailing_id}")
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


@pytest.fixture
async def message_id(arrange: Arrange) -> int:
    return await arrange.message()


@pytest.fixture
async def running(client: httpx.AsyncClient, arrange: Arrange, message_id: int) -> dict[str, Any]:
    """A mailing that started at creation, with a report for each of CLIENTS."""
    await arrange.clients(CLIENTS)
    mailing = await _shown(client, await arrange.mailing(message_id=message_id, lasts=TWO_HOURS))
    assert mailing["status"] == "running"
    return mailing


@pytest.fixture
async def scheduled(client: httpx.AsyncClient, arrange: Arrange, message_id: int) -> dict[str, Any]:
    mailing_id = await arrange.mailing(
        message_id=message_id, start_in=timedelta(hours=1), lasts=TWO_HOURS
    )
    return await _shown(client, mailing_id)


async def _post(client: httpx.AsyncClient, mailing: dict[str, Any], action: str) -> httpx.Response:
    return await client.post(f"/api/v1/mailings/{mailing['id']}/{action}")


async def _patch(
    client: httpx.AsyncClient, mailing: dict[str, Any], changes: dict[str, Any]
) -> httpx.Response:
    return await client.patch(f"/api/v1/mailings/{mailing['id']}", json=changes)


def _conflict(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    for word in words:
        assert word in response.json()["detail"]


# -- edits -------------------------------------------------------------------------------------


async def test_scheduled_mailing_takes_any_change(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock, scheduled: dict[str, Any]
) -> None:
    other_message = await arrange.message("Another text")
    changes = {
        "start_at": iso(clock.now() + timedelta(hours=3)),
        "end_at": iso(clock.now() + timedelta(hours=5)),
        "message_id": other_message,
        "filter": {"operator_codes": ["926"], "tags": ["vip"]},
        "send_window": {"start": "10:00", "end": "19:30"},
    }

    response = await _patch(client, scheduled, changes)

    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["status"] == "scheduled"
    assert edited["start_at"] == "2030-01-15T15:00:00Z"
    assert edited["end_at"] == "2030-01-15T17:00:00Z"
    assert edited["message_id"] == other_message
    assert edited["filter"] == changes["filter"]
    assert edited["send_window"] == changes["send_window"]
    assert (await client.get(f"/api/v1/mailings/{scheduled['id']}")).json() == edited


async def test_moving_start_into_the_past_starts_the_mailing(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock, scheduled: dict[str, Any]
) -> None:
    await arrange.clients(CLIENTS)
    response = await _patch(client, scheduled, {"start_at": iso(clock.now())})
    assert response.json()["status"] == "running"
    assert response.json()["counts"]["by_status"]["pending"] == len(CLIENTS)


async def test_removing_the_send_window_with_null(
    client: httpx.AsyncClient, arrange: Arrange, message_id: int
) -> None:
    mailing_id = await arrange.mailing(
        message_id=message_id, lasts=TWO_HOURS, send_window=("09:00", "18:00")
    )
    mailing = await _shown(client, mailing_id)
    response = await _patch(client, mailing, {"send_window": None})
    assert response.status_code == 200
    assert response.json()["send_window"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start_at", "2030-01-15T11:00:00Z"),
        ("message_id", None),  # replaced by another message's id in the test
        ("filter", {"operator_codes": ["926"]}),
    ],
)
@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
async def test_active_mailing_refuses_changes_to_what_its_reports_came_from(
    client: httpx.AsyncClient,
    arrange: Arrange,
    running: dict[str, Any],
    field: str,
    value: Any,
    paused: bool,
) -> None:
    if paused:
        assert (await _post(client, running, "pause")).status_code == 200
    if field == "message_id":
        value = await arrange.message("Changed my mind")
    status = "paused" if paused else "running"

    response = await _patch(client, running, {field: value})

    _conflict(response, field, status, "end_at and send_window")
    assert (await client.get(f"/api/v1/mailings/{running['id']}")).json()[field] == running[field]


async def test_active_mailing_takes_a_new_end_and_send_window(
    client: httpx.AsyncClient, clock: FakeClock, running: dict[str, Any]
) -> None:
    changes = {
        "end_at": iso(clock.now() + timedelta(minutes=30)),
        "send_window": {"start": "22:00", "end": "06:00"},
        # Sent back unchanged, as a form would: not a change, so allowed.
        "start_at": running["start_at"],
        "filter": running["filter"],
    }
    response = await _patch(client, running, changes)
    assert response.status_code == 200, response.text
    assert response.json()["end_at"] == "2030-01-15T12:30:00Z"
    assert response.json()["send_window"] == {"start": "22:00", "end": "06:00"}
    assert response.json()["status"] == "running"


@pytest.mark.parametrize("end_at", ["2030-01-15T11:59:00Z", "2030-01-15T15:00:00+03:00"])
async def test_a_new_end_must_be_after_start(
    client: httpx.AsyncClient, running: dict[str, Any], end_at: str
) -> None:
    response = await _patch(client, running, {"end_at": end_at})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "end_at"]
    assert "must be after start_at" in response.json()["detail"]


async def test_a_new_end_in_the_past_is_refused(
    client: httpx.AsyncClient, clock: FakeClock, running: dict[str, Any]
) -> None:
    clock.advance(minutes=30)
    response = await _patch(client, running, {"end_at": iso(clock.now() - timedelta(minutes=1))})
    assert response.status_code == 422
    assert "must be in the future" in response.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"start_at": None}, ["body", "start_at"]),
        ({"end_at": None}, ["body", "end_at"]),
        ({"filter": None}, ["body", "filter"]),
        ({"end_at": "2030-01-15T20:00:00"}, ["body", "end_at"]),
        ({"message_id": 424242}, ["body", "message_id"]),
        ({"status": "running"}, ["body", "status"]),
    ],
)
async def test_invalid_edit_is_422_and_changes_nothing(
    client: httpx.AsyncClient, scheduled: dict[str, Any], changes: dict[str, Any], loc: list[str]
) -> None:
    response = await _patch(client, scheduled, changes)
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["errors"]]
    assert (await client.get(f"/api/v1/mailings/{scheduled['id']}")).json() == scheduled


async def test_finished_and_cancelled_mailings_cannot_be_edited(
    client: httpx.AsyncClient,
    arrange: Arrange,
    clean_db: AsyncEngine,
    clock: FakeClock,
    running: dict[str, Any],
) -> None:
    assert (await _post(client, running, "cancel")).status_code == 200
    _conflict(
        await _patch(client, running, {"end_at": iso(clock.now() + timedelta(hours=9))}),
        "cancelled",
    )

    other = await _shown(
        client, await arrange.mailing(message_id=running["message_id"], lasts=TWO_HOURS)
    )
    clock.advance(hours=3)  # past its end
    async with clean_db.begin() as connection:
        assert [f.mailing_id for f in await repository.finish_mailings(connection, clock.now())]
    _conflict(await _patch(client, other, {"send_window": None}), "finished")


async def test_editing_a_missing_mailing_is_404(client: httpx.AsyncClient) -> None:
    response = await client.patch("/api/v1/mailings/999", json={"send_window": None})
    assert response.status_code == 404


# -- delete ------------------------------------------------------------------------------------


async def test_delete_scheduled_mailing(
    client: httpx.AsyncClient, scheduled: dict[str, Any]
) -> None:
    url = f"/api/v1/mailings/{scheduled['id']}"
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url)).status_code == 404


async def test_delete_refused_while_running_or_paused(
    client: httpx.AsyncClient, running: dict[str, Any]
) -> None:
    url = f"/api/v1/mailings/{running['id']}"
    _conflict(await client.delete(url), "running", "cancel it first")
    await _post(client, running, "pause")
    _conflict(await client.delete(url), "paused")
    assert (await client.get(url)).status_code == 200


async def test_deleting_a_cancelled_mailing_deletes_its_reports(
    client: httpx.AsyncClient, arrange: Arrange, session: AsyncSession, running: dict[str, Any]
) -> None:
    await _post(client, running, "cancel")
    assert (await client.delete(f"/api/v1/mailings/{running['id']}")).status_code == 204
    assert await arrange.reports(running["id"]) == []
    assert await session.scalar(select(func.count()).select_from(Report)) == 0


# -- pause, resume, cancel ---------------------------------------------------------------------


async def test_pause_and_resume_a_running_mailing(
    client: httpx.AsyncClient, running: dict[str, Any]
) -> None:
    paused = await _post(client, running, "pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    _conflict(await _post(client, running, "pause"), "is paused")

    resumed = await _post(client, running, "resume")
    assert resumed.json()["status"] == "running"
    assert resumed.json()["started_at"] == running["started_at"]
    assert resumed.json()["counts"] == running["counts"]
    _conflict(await _post(client, running, "resume"), "is running", "only a paused")


async def test_paused_before_start_resumes_as_scheduled(
    client: httpx.AsyncClient, arrange: Arrange, scheduled: dict[str, Any]
) -> None:
    assert (await _post(client, scheduled, "pause")).json()["status"] == "paused"
    resumed = await _post(client, scheduled, "resume")
    assert resumed.json()["status"] == "scheduled"
    assert await arrange.reports(scheduled["id"]) == []


async def test_paused_before_start_and_resumed_in_its_window_starts(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock, scheduled: dict[str, Any]
) -> None:
    await arrange.clients(CLIENTS)
    await _post(client, scheduled, "pause")
    clock.advance(hours=1, minutes=10)  # past start_at while paused: the scheduler leaves it

    resumed = (await _post(client, scheduled, "resume")).json()

    assert resumed["status"] == "running"
    assert resumed["started_at"] == "2030-01-15T13:10:00Z"
    assert resumed["counts"]["by_status"]["pending"] == len(CLIENTS)
    assert len(await arrange.reports(scheduled["id"])) == len(CLIENTS)


async def test_resume_after_end_is_refused(
    client: httpx.AsyncClient, clock: FakeClock, running: dict[str, Any]
) -> None:
    await _post(client, running, "pause")
    clock.advance(hours=3)
    _conflict(await _post(client, running, "resume"), "move end_at into the future")


async def test_cancel_cancels_only_reports_not_yet_sent(
    client: httpx.AsyncClient, arrange: Arrange, running: dict[str, Any]
) -> None:
    first, second, third = await arrange.reports(running["id"])
    await arrange.reports_in(ReportStatus.SENDING, [second.id])
    await arrange.reports_in(ReportStatus.SENT, [third.id])

    cancelled = await _post(client, running, "cancel")

    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["finished_at"] is not None
    nothing = {status.value: 0 for status in ReportStatus}
    assert body["counts"]["by_status"] == nothing | {"cancelled": 1, "sending": 1, "sent": 1}
    statuses = {report.id: report.status for report in await arrange.reports(running["id"])}
    assert statuses == {first.id: "cancelled", second.id: "sending", third.id: "sent"}


@pytest.mark.parametrize("action", ["pause", "resume", "cancel"])
async def test_control_of_a_cancelled_mailing_is_409_naming_its_status(
    client: httpx.AsyncClient, scheduled: dict[str, Any], action: str
) -> None:
    await _post(client, scheduled, "cancel")
    _conflict(await _post(client, scheduled, action), "is cancelled")


async def test_control_of_a_missing_mailing_is_404(client: httpx.AsyncClient) -> None:
    for action in ("pause", "resume", "cancel"):
        response = await client.post(f"/api/v1/mailings/777/{action}")
        assert response.status_code == 404
