"""The daily report: sent once per day at REPORT_TIME, with the database's figures."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.db import create_engine
from sms_sender.models import Notification, Report
from tests.arrange import Arrange
from tests.conftest import FakeClock
from tests.notifications.conftest import (
    Inbox,
    LoopFactory,
    SilentServer,
    html_part,
    mail_settings,
    text_part,
)

pytestmark = pytest.mark.usefixtures("clean_db")

# FakeClock starts at 2030-01-15 12:00 UTC: 15:00 in Moscow, so 08:00 there has passed and the
# report due is the one of 2030-01-14 (Moscow), i.e. [2030-01-13 21:00, 2030-01-14 21:00) UTC.
DAY = "2030-01-14"


def at(day: int, hour: int) -> datetime:
    return datetime(2030, 1, day, hour, tzinfo=UTC)


async def counts_by_status(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[int, dict[str, int]]:
    async with sessionmaker() as session:
        query = select(Report.mailing_id, Report.status, func.count()).group_by(
            Report.mailing_id, Report.status
        )
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        for mailing_id, status, count in await session.execute(query):
            counts[mailing_id][status] = count
    return counts


def summary(by_status: dict[str, int]) -> str:
    total = sum(by_status.values())
    delivered = by_status.get("delivered", 0)
    failed = by_status.get("failed", 0) + by_status.get("undelivered", 0)
    expired = by_status.get("expired", 0)
    return (
        f"total {total}: delivered {delivered} ({delivered / total:.1%}), "
        f"failed {failed} ({failed / total:.1%}), expired {expired} ({expired / total:.1%})"
    )


def status_line(by_status: dict[str, int]) -> str:
    return "by status: " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items()))


async def test_report_of_the_day_lists_the_mailings_active_in_it_with_their_figures(
    arrange: Arrange,
    inbox: Inbox,
    make_loop: LoopFactory,
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    running = await arrange.stored_mailing(
        status="running",
        started_at=at(14, 10),
        reports={"delivered": 6, "failed": 2, "undelivered": 1, "expired": 1, "pending": 2},
        errors={"failed": "invalid number", "undelivered": "absent subscriber"},
    )
    # Finished 01:00 Moscow time on the 14th: it was active that day.
    ended_early = await arrange.stored_mailing(
        status="finished",
        started_at=at(13, 8),
        finished_at=at(13, 22),
        reports={"failed": 3, "delivered": 1},
        errors={"failed": "invalid number"},
    )
    ended_before = await arrange.stored_mailing(
        status="finished", started_at=at(13, 8), finished_at=at(13, 20), reports={"sent": 4}
    )
    started_after = await arrange.stored_mailing(
        status="running", started_at=at(14, 22), reports={"sent": 1}
    )
    scheduled = await arrange.stored_mailing(
        status="scheduled", started_at=None, start_at=at(16, 0)
    )

    settings = mail_settings(
        database_url, inbox.port, report_from="SMS sender <sms-sender@example.com>"
    )
    sent = await make_loop(settings).tick()

    assert sent == 1
    [message] = inbox.messages
    assert message["From"] == "SMS sender <sms-sender@example.com>"
    assert message["Subject"] == f"sms-sender daily report for {DAY} (Europe/Moscow)"
    assert inbox.recipients == [["ops@example.com", "boss@example.com"]]
    assert message.get_content_type() == "multipart/alternative"
    text, html = text_part(message), html_part(message)
    counts = await counts_by_status(sessionmaker)
    for mailing_id, status in ((running, "running"), (ended_early, "finished")):
        assert f"Mailing {mailing_id} ({status})" in text
        assert summary(counts[mailing_id]) in text
        assert status_line(counts[mailing_id]) in text
        assert f"https://sms.example.com/admin/mailings/{mailing_id}" in html
    for absent in (ended_before, started_after, scheduled):
        assert f"Mailing {absent} " not in text
        assert f'/admin/mailings/{absent}"' not in html
    totals: dict[str, int] = defaultdict(int)
    for mailing_id in (running, ended_early):
        for status, count in counts[mailing_id].items():
            totals[status] += count
    assert "Totals\n  " + summary(totals) in text
    assert text.index("  5: invalid number") < text.index("  1: absent subscriber")
    assert "<td>running</td>" in html


async def test_the_day_is_sent_once_then_the_next_day_after_its_report_time(
    arrange: Arrange, inbox: Inbox, make_loop: LoopFactory, database_url: str, clock: FakeClock
) -> None:
    loop = make_loop(mail_settings(database_url, inbox.port))
    assert await loop.tick() == 1
    assert await loop.tick() == 0
    clock.set(datetime(2030, 1, 16, 4, 59, tzinfo=UTC))  # 07:59 in Moscow: not yet
    assert await loop.tick() == 0
    clock.set(datetime(2030, 1, 16, 5, 0, tzinfo=UTC))  # 08:00
    assert await loop.tick() == 1
    assert inbox.subjects() == [
        "sms-sender daily report for 2030-01-14 (Europe/Moscow)",
        "sms-sender daily report for 2030-01-15 (Europe/Moscow)",
    ]
    assert "No mailing was active on this day." in text_part(inbox.messages[1])


async def test_days_missed_while_down_are_sent_when_the_service_comes_back(
    inbox: Inbox, make_loop: LoopFactory, database_url: str, clock: FakeClock
) -> None:
    loop = make_loop(mail_settings(database_url, inbox.port))
    await loop.tick()  # the report of the 14th
    clock.set(datetime(2030, 1, 19, 6, 0, tzinfo=UTC))  # back after four days: 09:00, the 19th

    assert await loop.tick() == 4

    assert [subject.split()[-2] for subject in inbox.subjects()] == [
        "2030-01-14",
        "2030-01-15",
        "2030-01-16",
        "2030-01-17",
        "2030-01-18",
    ]


async def test_a_new_database_starts_with_the_latest_day_not_with_history(
    inbox: Inbox, make_loop: LoopFactory, database_url: str
) -> None:
    assert await make_loop(mail_settings(database_url, inbox.port)).tick() == 1
    assert inbox.subjects() == ["sms-sender daily report for 2030-01-14 (Europe/Moscow)"]


async def test_two_workers_racing_for_the_same_day_send_one_mail(
    inbox: Inbox, make_loop: LoopFactory, database_url: str, clean_db: AsyncEngine
) -> None:
    settings = mail_settings(database_url, inbox.port)
    other_database = create_engine(database_url)  # the second worker is another process
    try:
        first = make_loop(settings, owner="worker-a")
        second = make_loop(settings, owner="worker-b", database=other_database)
        for _ in range(3):
            await asyncio.gather(first.tick(), second.tick())
    finally:
        await other_database.dispose()

    assert inbox.subjects() == ["sms-sender daily report for 2030-01-14 (Europe/Moscow)"]
    async with clean_db.connect() as connection:
        claimed = (await connection.execute(select(Notification.status))).scalars().all()
    assert claimed == ["sent"]


async def test_a_restart_between_claim_and_send_sends_the_day_once_the_lease_runs_out(
    inbox: Inbox,
    silent_smtp: SilentServer,
    make_loop: LoopFactory,
    database_url: str,
    clock: FakeClock,
) -> None:
    # The first process claims the day and dies while its mail server has not even said hello.
    dying = make_loop(mail_settings(database_url, silent_smtp.port), owner="worker-dead")
    attempt = asyncio.create_task(dying.tick())
    await asyncio.wait_for(silent_smtp.connected.wait(), 10)
    attempt.cancel()
    await asyncio.gather(attempt, return_exceptions=True)

    restarted = make_loop(mail_settings(database_url, inbox.port), owner="worker-new")
    assert await restarted.tick() == 0  # the dead process's lease still holds
    clock.advance(minutes=10)

    assert await restarted.tick() == 1
    assert inbox.subjects() == ["sms-sender daily report for 2030-01-14 (Europe/Moscow)"]
    assert await restarted.tick() == 0
