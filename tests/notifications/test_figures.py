"""The figures of the daily report and the alerts come from the counters, exactly, not a scan."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.dispatch.repository import fold_counts
from sms_sender.notifications import repository
from sms_sender.reports.models import Report, ReportStatus
from tests.arrange import Arrange

pytestmark = pytest.mark.usefixtures("clean_db")


@contextmanager
def statements_of(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL ``engine`` runs inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])  # (connection, cursor, statement, ...)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _full_count(engine: AsyncEngine) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Report.mailing_id, Report.status, func.count()).group_by(
                Report.mailing_id, Report.status
            )
        )
        for mailing_id, status, count in rows:
            counts[mailing_id][status] = count
    return counts


async def test_figures_equal_a_full_count_and_read_no_report(
    arrange: Arrange, clean_db: AsyncEngine
) -> None:
    await arrange.many_clients(30)
    first = await arrange.mailing()
    second = await arrange.mailing(lasts=timedelta(hours=2))
    async with clean_db.begin() as connection:  # sends, failures and a deleted report
        await connection.execute(
            update(Report)
            .where(Report.mailing_id == first, Report.id % 3 == 0)
            .values(status=ReportStatus.SENT)
        )
        await connection.execute(
            update(Report)
            .where(Report.mailing_id == first, Report.id % 3 == 1)
            .values(status=ReportStatus.FAILED, error="no route")
        )
        await connection.execute(
            delete(Report).where(Report.id == select(func.min(Report.id)).scalar_subquery())
        )
    await arrange.control("cancel", second)
    async with clean_db.begin() as connection:  # half the deltas folded, half not yet
        await fold_counts(connection)
        await connection.execute(
            update(Report)
            .where(Report.mailing_id == first, Report.status == ReportStatus.SENT)
            .values(status=ReportStatus.DELIVERED)
        )

    with statements_of(clean_db) as statements:
        async with clean_db.connect() as connection:
            figures = await repository.figures_of(connection, [first, second])
            now = arrange.clock.now()
            active = await repository.mailings_active_between(
                connection, now - timedelta(days=1), now + timedelta(days=1)
            )

    expected = await _full_count(clean_db)
    assert expected[first].keys() == {"pending", "delivered", "failed"}
    assert expected[second] == {"cancelled": 30}
    assert {figure.mailing_id: figure.by_status for figure in figures} == expected
    assert {figure.mailing_id: figure.by_status for figure in active} == expected
    assert statements
    assert not [sql for sql in statements if re.search(r"(FROM|JOIN)\s+reports\b", sql)]
