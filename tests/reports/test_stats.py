from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sms_sender.reports.models import ReportStatus
from tests.conftest import FakeClock
from tests.mailings.factories import (
    add_clients,
    add_message,
    create_mailing,
    mailing_body,
    reports_of,
    set_report_status,
)

pytestmark = pytest.mark.usefixtures("clean_db")

NOTHING = {status.value: 0 for status in ReportStatus}
CLIENTS = tuple((f"7916000000{number}", "916", None) for number in range(4))


@pytest.fixture
async def mailings(
    client: httpx.AsyncClient, session: AsyncSession, clock: FakeClock
) -> list[dict[str, Any]]:
    """Two running mailings of 4 reports (the first: 2 delivered, 1 failed), one scheduled."""
    await add_clients(session, clock.now(), *CLIENTS)
    message_id = await add_message(client)
    first = await create_mailing(client, mailing_body(message_id, clock.now()))
    second = await create_mailing(client, mailing_body(message_id, clock.now()))
    later = mailing_body(message_id, clock.now(), starts_in=timedelta(days=1))
    scheduled = await create_mailing(client, later)
    reports = [report.id for report in await reports_of(session, first["id"])]
    await set_report_status(session, reports[:2], ReportStatus.DELIVERED)
    await set_report_status(session, reports[2:3], ReportStatus.FAILED, error="blocked number")
    return [first, second, scheduled]


async def test_mailing_stats_lists_every_status(
    client: httpx.AsyncClient, mailings: list[dict[str, Any]]
) -> None:
    first, _, scheduled = mailings

    stats = (await client.get(f"/api/v1/mailings/{first['id']}/stats")).json()
    assert stats == {
        "mailing_id": first["id"],
        "total": 4,
        "by_status": NOTHING | {"delivered": 2, "failed": 1, "pending": 1},
        "skipped_by_reason": {},
    }

    empty = (await client.get(f"/api/v1/mailings/{scheduled['id']}/stats")).json()
    assert empty == {
        "mailing_id": scheduled["id"],
        "total": 0,
        "by_status": NOTHING,
        "skipped_by_reason": {},
    }


async def test_mailing_stats_of_a_missing_mailing_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/mailings/31337/stats")
    assert response.status_code == 404
    assert response.json()["detail"] == "mailing 31337 does not exist"


async def test_mailing_list_and_read_carry_the_same_counts(
    client: httpx.AsyncClient, mailings: list[dict[str, Any]]
) -> None:
    first = mailings[0]
    stats = (await client.get(f"/api/v1/mailings/{first['id']}/stats")).json()
    read = (await client.get(f"/api/v1/mailings/{first['id']}")).json()
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
    client: httpx.AsyncClient, mailings: list[dict[str, Any]]
) -> None:
    first, second, scheduled = mailings

    stats = (await client.get("/api/v1/stats")).json()

    assert stats["total"] == 8
    assert stats["by_status"] == NOTHING | {"pending": 5, "delivered": 2, "failed": 1}
    assert stats["mailings"] == [
        {
            "mailing_id": first["id"],
            "status": "running",
            "total": 4,
            "by_status": NOTHING | {"delivered": 2, "failed": 1, "pending": 1},
        },
        {
            "mailing_id": second["id"],
            "status": "running",
            "total": 4,
            "by_status": NOTHING | {"pending": 4},
        },
        {"mailing_id": scheduled["id"], "status": "scheduled", "total": 0, "by_status": NOTHING},
    ]


async def test_overall_stats_of_an_empty_service(client: httpx.AsyncClient) -> None:
    stats = (await client.get("/api/v1/stats")).json()
    assert stats == {"total": 0, "by_status": NOTHING, "mailings": []}


async def test_overall_stats_is_one_query(
    client: httpx.AsyncClient, mailings: list[dict[str, Any]], clean_db: AsyncEngine
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
