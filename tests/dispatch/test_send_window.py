"""Send windows end to end: clients in several zones wait for their own local hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.providers.fake import FakeProvider
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")

# The fake clock starts at 2030-01-15 12:00 UTC.
ZONES = {
    "79160000001": "UTC",  # 12:00
    "79160000002": "Europe/Moscow",  # 15:00
    "79160000003": "America/New_York",  # 07:00
    "79160000004": "Asia/Vladivostok",  # 22:00
}


def at(hour: int, day: int = 15) -> datetime:
    return datetime(2030, 1, day, hour, tzinfo=UTC)


async def arrange_zones(arrange: Arrange) -> None:
    await arrange.clients([ClientSpec(phone, timezone=zone) for phone, zone in ZONES.items()])


async def next_attempts(arrange: Arrange, mailing_id: int) -> dict[str, datetime | None]:
    """When each client's report waits for, None once it is no longer pending."""
    return {
        report.phone: report.next_attempt_at if report.status == ReportStatus.PENDING else None
        for report in await arrange.reports(mailing_id)
    }


async def test_each_client_gets_the_message_in_their_own_daytime_window(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange_zones(arrange)
    mailing_id = await arrange.mailing(lasts=timedelta(hours=10), send_window=("09:00", "18:00"))
    provider = FakeProvider(clock=clock)
    engine = make_engine(provider)

    await engine.worker.drain()
    assert {call.message.phone for call in provider.calls} == {"79160000001", "79160000002"}
    assert await next_attempts(arrange, mailing_id) == {
        "79160000001": None,
        "79160000002": None,
        "79160000003": at(14),  # 09:00 in New York
        "79160000004": at(23),  # 09:00 tomorrow in Vladivostok: after the end (22:00 UTC)
    }

    clock.set(at(14))
    await engine.worker.drain()
    assert provider.calls[-1].message.phone == "79160000003"
    assert provider.calls[-1].started_at == at(14)

    clock.set(at(22))  # end_at: Vladivostok's window never opened in time
    await engine.scheduler.tick()
    reports = {report.phone: report.status for report in await arrange.reports(mailing_id)}
    assert reports == {
        "79160000001": ReportStatus.SENT,
        "79160000002": ReportStatus.SENT,
        "79160000003": ReportStatus.SENT,
        "79160000004": ReportStatus.EXPIRED,
    }
    assert len(provider.calls) == 3


async def test_a_window_that_wraps_midnight(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange_zones(arrange)
    mailing_id = await arrange.mailing(lasts=timedelta(days=1), send_window=("22:00", "06:00"))
    provider = FakeProvider(clock=clock)
    engine = make_engine(provider)

    await engine.worker.drain()
    assert [call.message.phone for call in provider.calls] == ["79160000004"]  # 22:00 local
    assert await next_attempts(arrange, mailing_id) == {
        "79160000001": at(22),  # 22:00 UTC
        "79160000002": at(19),  # 22:00 in Moscow
        "79160000003": at(3, day=16),  # 22:00 in New York
        "79160000004": None,
    }

    for moment in (at(19), at(22), at(3, day=16)):
        clock.set(moment)
        await engine.worker.drain()
        assert provider.calls[-1].started_at == moment

    assert await arrange.statuses(mailing_id) == {"sent": 4}
    assert provider.duplicates() == []


async def test_a_put_off_report_is_sent_by_a_running_engine_when_its_window_opens(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000003", timezone="America/New_York")])
    mailing_id = await arrange.mailing(lasts=timedelta(hours=10), send_window=("09:00", "18:00"))
    provider = FakeProvider(clock=clock)
    async with make_engine(provider).running():

        async def put_off() -> bool:
            return await next_attempts(arrange, mailing_id) == {"79160000003": at(14)}

        await eventually(put_off, what="the report put off until 09:00 in New York")
        clock.set(at(14))  # the idle worker sleeps until exactly then
        await provider.wait_for_results(1)
    assert provider.calls[0].started_at == at(14)
    assert await arrange.statuses(mailing_id) == {"sent": 1}


async def test_a_batch_outside_its_window_is_put_off_in_one_transaction(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock, clean_db: AsyncEngine
) -> None:
    await arrange.many_clients(300)
    mailing_id = await arrange.mailing(lasts=timedelta(hours=10), send_window=("20:00", "21:00"))
    provider = FakeProvider(clock=clock)
    # One message a second: a rate-limit group of one, so a put-off per group would show.
    worker = make_engine(provider, rate_limit=1.0).worker
    transactions = 0

    def count(_: object) -> None:
        nonlocal transactions
        transactions += 1

    event.listen(clean_db.sync_engine, "begin", count)
    try:
        await worker.drain()
    finally:
        event.remove(clean_db.sync_engine, "begin", count)

    assert provider.calls == []
    assert set((await next_attempts(arrange, mailing_id)).values()) == {at(20)}
    # The rate limiter's row, the worker's first look for abandoned sends, the claim (which
    # screens the batch) and a last empty claim.
    assert transactions <= 4
