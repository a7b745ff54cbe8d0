from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sms_sender.db import CHANNEL_MAILINGS, CHANNEL_REPORTS, Notifier
from sms_sender.mailings.models import Mailing
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

# Two operators, two tags, one client without a tag.
DIRECTORY = [
    ClientSpec("79160000001", operator_code="916", tag="vip"),
    ClientSpec("79160000002", operator_code="916"),
    ClientSpec("79260000003", operator_code="926", tag="vip"),
    ClientSpec("79260000004", operator_code="926", tag="regular"),
    ClientSpec("79030000005", operator_code="903", tag="regular"),
]
EVERY_STATUS_ZERO = {status.value: 0 for status in ReportStatus}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def mailing_body(
    message_id: int,
    now: datetime,
    *,
    starts_in: timedelta = timedelta(0),
    lasts: timedelta = timedelta(hours=2),
    **fields: Any,
) -> dict[str, Any]:
    """A valid POST /mailings body starting ``starts_in`` after now; ``fields`` override any key."""
    start_at = now + starts_in
    body: dict[str, Any] = {
        "start_at": iso(start_at),
        "end_at": iso(start_at + lasts),
        "message_id": message_id,
        "filter": {},
    }
    return body | fields


async def create_mailing(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST /mailings, which must answer 201: the created mailing as the API shows it."""
    response = await client.post("/api/v1/mailings", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.mark.parametrize(
    ("mailing_filter", "expected_phones"),
    [
        ({}, {"79160000001", "79160000002", "79260000003", "79260000004", "79030000005"}),
        ({"operator_codes": [], "tags": []}, {spec.phone for spec in DIRECTORY}),
        ({"operator_codes": ["916"]}, {"79160000001", "79160000002"}),
        ({"tags": ["vip"]}, {"79160000001", "79260000003"}),
        (
            {"operator_codes": ["916", "926"]},
            {"79160000001", "79160000002", "79260000003", "79260000004"},
        ),
        (
            {"operator_codes": ["916", "926"], "tags": ["vip", "regular"]},
            {"79160000001", "79260000003", "79260000004"},
        ),
        ({"operator_codes": ["903"], "tags": ["vip"]}, set()),
    ],
    ids=[
        "empty",
        "empty-lists",
        "one-code",
        "one-tag",
        "two-codes",
        "and-across-or-within",
        "nobody",
    ],
)
async def test_immediate_start_makes_one_report_per_matching_client(
    client: httpx.AsyncClient,
    arrange: Arrange,
    clock: FakeClock,
    mailing_filter: dict[str, list[str]],
    expected_phones: set[str],
) -> None:
    await arrange.clients(DIRECTORY)
    message_id = await arrange.message("Hello from the test")

    mailing = await create_mailing(
        client,
        mailing_body(
            message_id, clock.now(), starts_in=timedelta(minutes=-5), filter=mailing_filter
        ),
    )

    assert mailing["status"] == "running"
    assert mailing["started_at"] == iso(clock.now()).replace("+00:00", "Z")
    assert mailing["counts"]["total"] == len(expected_phones)
    assert mailing["counts"]["by_status"] == EVERY_STATUS_ZERO | {"pending": len(expected_phones)}
    reports = await arrange.reports(mailing["id"])
    assert {report.phone for report in reports} == expected_phones
    assert {report.text for report in reports} <= {"Hello from the test"}
    assert all(report.status == ReportStatus.PENDING for report in reports)


async def test_mailing_starting_now_exactly_starts(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    mailing = await create_mailing(client, mailing_body(await arrange.message(), clock.now()))
    assert mailing["status"] == "running"
    assert mailing["counts"]["total"] == 1


async def test_future_mailing_is_scheduled_with_no_reports(
    client: httpx.AsyncClient, arrange: Arrange, session: AsyncSession, clock: FakeClock
) -> None:
    await arrange.clients(DIRECTORY)
    body = mailing_body(
        await arrange.message(),
        clock.now(),
        starts_in=timedelta(seconds=1),
        filter={"operator_codes": ["916"], "tags": ["vip"]},
        send_window={"start": "22:00", "end": "06:00"},
    )

    mailing = await create_mailing(client, body)

    assert mailing["status"] == "scheduled"
    assert mailing["started_at"] is None
    assert mailing["counts"] == {"total": 0, "by_status": EVERY_STATUS_ZERO}
    assert mailing["filter"] == {"operator_codes": ["916"], "tags": ["vip"]}
    assert mailing["send_window"] == {"start": "22:00", "end": "06:00"}
    assert await arrange.reports(mailing["id"]) == []
    stored = await session.get(Mailing, mailing["id"])
    assert stored is not None
    assert (stored.send_window_start, stored.send_window_end) == (22 * 60, 6 * 60)


async def test_datetimes_with_an_offset_are_stored_and_shown_in_utc(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock
) -> None:
    body = mailing_body(
        await arrange.message(),
        clock.now(),
        start_at="2030-02-01T09:00:00+03:00",
        end_at="2030-02-01T18:30:00+03:00",
    )
    mailing = await create_mailing(client, body)
    again = (await client.get(f"/api/v1/mailings/{mailing['id']}")).json()
    assert (again["start_at"], again["end_at"]) == ("2030-02-01T06:00:00Z", "2030-02-01T15:30:00Z")
    assert (mailing["start_at"], mailing["end_at"]) == (again["start_at"], again["end_at"])


async def test_creating_wakes_the_engine_after_commit(
    client: httpx.AsyncClient, arrange: Arrange, notifier: Notifier, clock: FakeClock
) -> None:
    message_id = await arrange.message()
    schedule_changed = notifier.subscribe(CHANNEL_MAILINGS)
    reports_due = notifier.subscribe(CHANNEL_REPORTS)

    await create_mailing(
        client, mailing_body(message_id, clock.now(), starts_in=timedelta(hours=1))
    )
    assert schedule_changed.is_set()
    assert not reports_due.is_set()

    await create_mailing(client, mailing_body(message_id, clock.now()))
    assert reports_due.is_set()


def _naive(body: dict[str, Any]) -> dict[str, Any]:
    return body | {"start_at": "2030-01-15T12:00:00"}


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        (_naive, ["body", "start_at"], "UTC offset or Z"),
        (lambda b: b | {"end_at": b["start_at"]}, ["body", "end_at"], "must be after start_at"),
        (
            lambda b: b | {"start_at": "2030-01-14T00:00:00Z", "end_at": "2030-01-15T11:59:59Z"},
            ["body", "end_at"],
            "must be in the future",
        ),
        (lambda b: b | {"message_id": 999_999}, ["body", "message_id"], "message 999999 does not"),
        (lambda b: b | {"message_id": None}, ["body", "message_id"], ""),
        (lambda b: b | {"message_id": "1"}, ["body", "message_id"], "integer"),
        (lambda b: b | {"start_at": 1_900_000_000}, ["body", "start_at"], "ISO 8601"),
        (lambda b: b | {"message_id": 2**63}, ["body", "message_id"], ""),
        (
            lambda b: b | {"filter": {"operator_codes": ["91"]}},
            ["body", "filter", "operator_codes", 0],
            "3 digits",
        ),
        (
            lambda b: b | {"filter": {"operator_codes": ["\uff19\uff11\uff16"]}},
            ["body", "filter", "operator_codes", 0],
            "3 digits",
        ),
        (lambda b: b | {"filter": {"tags": ["x" * 65]}}, ["body", "filter", "tags", 0], "64"),
        (lambda b: b | {"filter": {"tags": [""]}}, ["body", "filter", "tags", 0], ""),
        # A client's tag can hold no control character, so neither can a filter's (one rule).
        (
            lambda b: b | {"filter": {"tags": ["vip\n"]}},
            ["body", "filter", "tags", 0],
            "control characters",
        ),
        (
            lambda b: b | {"filter": {"tags": ["\x1b[31mvip"]}},
            ["body", "filter", "tags", 0],
            "control characters",
        ),
        (lambda b: b | {"filter": {"colour": ["red"]}}, ["body", "filter", "colour"], ""),
        (lambda b: {k: v for k, v in b.items() if k != "filter"}, ["body", "filter"], ""),
        (
            lambda b: b | {"send_window": {"start": "24:00", "end": "06:00"}},
            ["body", "send_window", "start"],
            "HH:MM",
        ),
        (
            lambda b: b | {"send_window": {"start": "9:00", "end": "18:00"}},
            ["body", "send_window", "start"],
            "HH:MM",
        ),
        (
            lambda b: b | {"send_window": {"start": "09:00", "end": "09:60"}},
            ["body", "send_window", "end"],
            "HH:MM",
        ),
        (
            lambda b: b | {"send_window": {"start": "09:00", "end": "09:00"}},
            ["body", "send_window"],
            "must differ",
        ),
        (lambda b: b | {"priority": "high"}, ["body", "priority"], ""),
    ],
    ids=[
        "naive",
        "end-not-after-start",
        "end-in-past",
        "unknown-message",
        "null-message",
        "message-id-as-text",
        "epoch-seconds",
        "huge-message-id",
        "short-code",
        "non-ascii-digits",
        "long-tag",
        "empty-tag",
        "newline-in-tag",
        "escape-in-tag",
        "unknown-filter-field",
        "missing-filter",
        "hour-24",
        "one-digit-hour",
        "minute-60",
        "empty-window",
        "unknown-field",
    ],
)
async def test_invalid_mailing_is_422_and_stores_nothing(
    client: httpx.AsyncClient,
    arrange: Arrange,
    clock: FakeClock,
    change: Any,
    loc: list[str | int],
    words: str,
) -> None:
    body = change(mailing_body(await arrange.message(), clock.now()))

    response = await client.post("/api/v1/mailings", json=body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert loc in [error["loc"] for error in problem["errors"]]
    assert words in problem["detail"]
    assert (await client.get("/api/v1/mailings")).json()["items"] == []


async def test_filter_repeats_are_dropped(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock
) -> None:
    body = mailing_body(
        await arrange.message(),
        clock.now(),
        filter={"operator_codes": ["916", "916", "926"], "tags": ["vip", "vip"]},
    )
    mailing = await create_mailing(client, body)
    assert mailing["filter"] == {"operator_codes": ["916", "926"], "tags": ["vip"]}


async def test_unknown_mailing_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/mailings/12345", f"/api/v1/mailings/{2**63 - 1}"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["title"] == "Not found"
    assert (await client.get(f"/api/v1/mailings/{2**63}")).status_code == 422


async def test_list_filters_by_status_across_pages(
    client: httpx.AsyncClient, arrange: Arrange
) -> None:
    await arrange.clients(DIRECTORY)
    message_id = await arrange.message()
    scheduled_ids = []
    for number in range(5):
        running = await arrange.mailing(message_id=message_id)
        assert await arrange.mailing_status(running) == "running"
        later = timedelta(hours=number + 1)
        scheduled_ids.append(await arrange.mailing(message_id=message_id, start_in=later))

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"status": "scheduled", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/mailings", params=params)).json()
        assert {item["status"] for item in page["items"]} == {"scheduled"}
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == scheduled_ids
    assert pages == 3
    running = (await client.get("/api/v1/mailings", params={"status": "running"})).json()
    assert len(running["items"]) == 5
    assert all(
        item["counts"]["by_status"]["pending"] == len(DIRECTORY) for item in running["items"]
    )


async def test_list_rejects_an_unknown_status_naming_the_valid_ones(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/mailings", params={"status": "done"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "status"]
    for status in ("scheduled", "running", "paused", "finished", "cancelled"):
        assert status in response.json()["detail"]


async def test_list_counts_come_from_one_query_over_the_counters_not_reports(
    client: httpx.AsyncClient, arrange: Arrange, clean_db: AsyncEngine
) -> None:
    await arrange.clients(DIRECTORY)
    message_id = await arrange.message()
    for _ in range(4):
        await arrange.mailing(message_id=message_id)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(clean_db.sync_engine, "before_cursor_execute", record)
    try:
        page = (await client.get("/api/v1/mailings")).json()
    finally:
        event.remove(clean_db.sync_engine, "before_cursor_execute", record)

    assert [item["counts"]["total"] for item in page["items"]] == [len(DIRECTORY)] * 4
    assert [sql for sql in statements if "FROM reports" in sql] == []
    over_counters = [sql for sql in statements if "FROM mailing_report_counts" in sql]
    assert len(over_counters) == 1
    assert "GROUP BY" in over_counters[0]


@pytest.mark.parametrize("text", ["x", "y" * 641])
async def test_a_text_the_configured_provider_cannot_send_is_refused_at_creation(
    client: httpx.AsyncClient,
    app: Any,
    arrange: Arrange,
    session: AsyncSession,
    clock: FakeClock,
    text: str,
) -> None:
    """SMS Aero takes 2 to 640 characters: refused once, not failed for every recipient."""
    app.state.settings = app.state.settings.model_copy(update={"provider": "smsaero"})
    await arrange.clients(DIRECTORY)
    message_id = await arrange.message(text)

    answer = await client.post(
        "/api/v1/mailings", json=mailing_body(message_id, clock.now(), starts_in=timedelta(0))
    )

    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    (error,) = answer.json()["errors"]
    assert error["loc"] == ["body", "message_id"]
    assert error["msg"] == (
        f"message {message_id} cannot be sent by the configured provider: the text has "
        f"{len(text):,} characters; the gateway takes 2 to 640"
    )
    assert (await session.execute(select(func.count()).select_from(Mailing))).scalar() == 0


async def test_the_same_text_is_accepted_when_the_provider_can_send_it(
    client: httpx.AsyncClient, arrange: Arrange, clock: FakeClock
) -> None:
    message_id = await arrange.message("x")

    answer = await client.post(
        "/api/v1/mailings", json=mailing_body(message_id, clock.now(), starts_in=timedelta(0))
    )

    assert answer.status_code == 201
