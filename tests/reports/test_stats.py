from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, ClientSpec

pytestmark = pytest.mark.usefixtures("clean_db")

NOTHING = {status.value: 0 for status in ReportStatus}
CLIENTS = [ClientSpec(f"7916000000{number}") for number in range(4)]


@pytest.fixture
async def mailings(arrange: Arrange) -> list[int]:
    """Two running mailings of 4 reports (the first: 2 delivered, 1 failed), one scheduled."""
    await arrange.clients(CLIENTS)
    message_id = await arrange.message()
    first = await arrange.mailing(message_id=message_id)
    second = await arrange.mailing(message_id=message_id)
    scheduled = await arrange.mailing(message_id=message_id, start_in=timedelta(days=1))
    reports = [report.id for report in await arrange.reports(first)]
    await arrange.reports_in(ReportStatus.DELIVERED, reports[:2])
    await arrange.reports_in(ReportStatus.FAILED, reports[2:3], error="blocked number")
    return [first, second, scheduled]


async def test_mailing_stats_lists_every_status(
    client: httpx.AsyncClient, mailings: list[int]
) -> None:
    first, _, scheduled = mailings

    stats = (await client.get(f"/api/v1/mailings/{first}/stats")).json()
    assert stats == {
        "mailing_id": first,
        "total": 4,
        "by_status": NOTHING | {"delivered": 2, "failed": 1, "pending": 1},
        "skipped_by_reason": {},
    }

    empty = (await client.get(f"/api/v1/mailings/{scheduled}/stats")).json()
    assert empty == {
        "mailing_id": scheduled,
        "total": 0,
        "by_status": NOTHING,
        "skipped_by_reason": {},
    }


async def test_mailing_stats_of_a_missing_mailing_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/mailings/31337/stats")
    assert response.status_code == 404
    assert response.json()["detail"] == "mailing 31337 does not exist"


async def test_mailing_list_and_read_carry_the_same_counts(
    client: httpx.AsyncClient, mailings: list[int]
) -> None:
    first = mailings[0]
    stats = (await client.get(f"/api/v1/mailings/{first}/stats")).json()
    read = (await client.get(f"/api/v1/mailings/{first}")).json()
    listed = (await client.get("/api/v1/mailings")).json()["items"][0]
    assert (
        read["counts"]
        == listed["counts"]
        == {
            "total": stats["total"],
            "by_status": stats["by_status"],
        }
    )


async def test_overall_stats_total_and_per_mailing(
    client: httpx.AsyncClient, mailings: list[int]
) -> None:
    first, second, scheduled = mailings

    stats = (await client.get("/api/v1/stats")).json()

    assert stats["total"] == 8
    assert stats["by_status"] == NOTHING | {"pending": 5, "delivered": 2, "failed": 1}
    assert stats["mailings"] == [
        {
            "mailing_id": first,
            "status": "running",
            "total": 4,
            "by_status": NOTHING | {"delivered": 2, "failed": 1, "pending": 1},
        },
        {
            "mailing_id": second,
            "status": "running",
            "total": 4,
            "by_status": NOTHING | {"pending": 4},
        },
        {"mailing_id": scheduled, "status": "scheduled", "total": 0, "by_status": NOTHING},
    ]


async def test_overall_stats_of_an_empty_service(client: httpx.AsyncClient) -> None:
    stats = (await client.get("/api/v1/stats")).json()
    assert stats == {"total": 0, "by_status": NOTHING, "mailings": []}


async def test_overall_stats_is_one_query(
    client: httpx.AsyncClient, mailings: list[int], clean_db: AsyncEngine
) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(clean_db.sync_engine, "before_cursor_execute", record)
    try:
        assert (await client.get("/api/v1/stats")).status_code == 200
    finally:
        event.remove(clean_db.sync_engine, "before_cursor_execute", record)

    assert len([sql for sql in statements if "reports" in sql]) == 1


async def test_mailing_stats_read_no_report_even_for_skipped_reasons(
    client: httpx.AsyncClient, mailings: list[int], arrange: Arrange, clean_db: AsyncEngine
) -> None:
    """By status and skipped by reason, the counters answer: no statement reads reports.

    A skipped report's reason that changes (an UPDATE of its error) moves its count too.
    """
    _, second, _ = mailings
    reports = [report.id for report in await arrange.reports(second)]
    await arrange.reports_in(ReportStatus.SKIPPED, reports[:3], error="no_consent")
    await arrange.reports_in(ReportStatus.SKIPPED, reports[3:], error="opted_out")
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(clean_db.sync_engine, "before_cursor_execute", record)
    try:
        stats = (await client.get(f"/api/v1/mailings/{second}/stats")).json()
    finally:
        event.remove(clean_db.sync_engine, "before_cursor_execute", record)

    assert [sql for sql in statements if "FROM reports" in sql] == []
    assert stats["by_status"] == NOTHING | {"skipped": 4}
    assert stats["skipped_by_reason"] == {"no_consent": 3, "opted_out": 1}

    await arrange.reports_in(ReportStatus.SKIPPED, reports[:1], error="opted_out")
    stats = (await client.get(f"/api/v1/mailings/{second}/stats")).json()
    assert stats["skipped_by_reason"] == {"no_consent": 2, "opted_out": 2}
