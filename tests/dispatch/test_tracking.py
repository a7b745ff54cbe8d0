"""Delivery reports: a provider that can tell moves ``sent`` to ``delivered`` / ``undelivered``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import timedelta

import pytest

from sms_sender.dispatch.tracking import is_due
from sms_sender.providers.base import (
    NO_TEXT_LIMITS,
    DeliveryStatus,
    OutgoingMessage,
    SendResult,
    TrackingThrottled,
)
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")


class TrackedGateway:
    """Accepts everything with id ``m<report id>``; reports delivery as the test decides."""

    name = "tracked"
    idempotent = False
    text_limits = NO_TEXT_LIMITS
    status_lifetime = timedelta(days=2)

    def __init__(self) -> None:
        self.delivery: dict[str, DeliveryStatus] = {}
        self.asked: list[list[str]] = []
        self.throttled: list[float | None] = []  # Retry-After of each 429 still to answer

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        return [SendResult.accepted(f"m{message.report_id}") for message in batch]

    async def delivery_status(
        self, provider_message_ids: Sequence[str]
    ) -> dict[str, DeliveryStatus]:
        self.asked.append(list(provider_message_ids))
        if self.throttled:
            raise TrackingThrottled("429", retry_after=self.throttled.pop(0))
        return {i: self.delivery[i] for i in provider_message_ids if i in self.delivery}


async def test_delivery_statuses_are_polled_into_the_reports(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec(f"7916000000{i}") for i in range(1, 6)])
    mailing_id = await arrange.mailing()
    gateway = TrackedGateway()
    engine = make_engine(gateway, batch_size=2)  # pages of two: the poller walks them all
    await engine.worker.drain()
    first, second, third, fourth, fifth = await arrange.reports(mailing_id)
    gateway.delivery = {
        f"m{first.id}": DeliveryStatus.DELIVERED,
        f"m{second.id}": DeliveryStatus.UNDELIVERED,
        f"m{third.id}": DeliveryStatus.UNKNOWN,  # still in transit
        f"m{fifth.id}": DeliveryStatus.DELIVERED,
    }
    assert engine.delivery_poller is not None

    assert await engine.delivery_poller.poll() == 3

    statuses = [report.status for report in await arrange.reports(mailing_id)]
    assert statuses == [
        ReportStatus.DELIVERED,
        ReportStatus.UNDELIVERED,
        ReportStatus.SENT,
        ReportStatus.SENT,
        ReportStatus.DELIVERED,
    ]
    assert sorted(i for page in gateway.asked for i in page) == sorted(
        f"m{r.id}" for r in (first, second, third, fourth, fifth)
    )
    gateway.asked.clear()
    assert await engine.delivery_poller.poll() == 0
    assert gateway.asked == []  # asked a moment ago: not due again yet
    clock.advance(seconds=30)
    assert await engine.delivery_poller.poll() == 0
    assert sorted(i for page in gateway.asked for i in page) == [f"m{third.id}", f"m{fourth.id}"]


async def test_the_running_engine_polls_on_its_interval(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing()
    gateway = TrackedGateway()
    async with make_engine(gateway).running() as engine:

        async def sent() -> bool:
            return (await arrange.statuses(mailing_id)) == {"sent": 1}

        await eventually(sent, what="the message sent")
        [report] = await arrange.reports(mailing_id)
        gateway.delivery = {f"m{report.id}": DeliveryStatus.DELIVERED}
        assert engine.delivery_poller is not None
        clock.advance(seconds=30)

        async def delivered() -> bool:
            return (await arrange.statuses(mailing_id)) == {"delivered": 1}

        await eventually(delivered, what="the delivery polled")


async def test_old_messages_are_no_longer_asked_about(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    await arrange.mailing(lasts=timedelta(days=7))
    gateway = TrackedGateway()
    engine = make_engine(gateway)
    await engine.worker.drain()
    assert engine.delivery_poller is not None

    clock.advance(days=3)  # beyond the two-day horizon
    assert await engine.delivery_poller.poll() == 0
    assert gateway.asked == []


def test_a_message_is_asked_about_less_and_less_often_as_it_ages() -> None:
    """After 30 s, 1, 2, 4, 8, 16, 32 min, then hourly: 55 questions over two days."""
    rounds = range(0, 2 * 24 * 3600 + 1, 30)  # a round every 30 s for two days
    asked_at = [
        age for before, age in itertools.pairwise(rounds) if is_due(before, age, first=30, cap=3600)
    ]

    assert asked_at[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert asked_at[8:10] == [7200, 10800]
    assert len(asked_at) == 7 + 48


async def test_a_throttled_round_slows_polling_and_asks_again_later(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    gateway = TrackedGateway()
    engine = make_engine(gateway)
    await engine.worker.drain()
    poller = engine.delivery_poller
    assert poller is not None
    first, second = await arrange.reports(mailing_id)
    gateway.delivery = {f"m{first.id}": DeliveryStatus.DELIVERED}
    gateway.throttled = [90.0]

    assert await poller.poll() == 0  # throttled: nothing recorded, nothing lost
    assert poller._backoff == timedelta(seconds=90)  # the gateway's Retry-After
    gateway.throttled = [None]
    assert await poller.poll() == 0
    assert poller._backoff == timedelta(seconds=180)  # twice the last pause

    assert await poller.poll() == 1  # the reports the throttled rounds missed are still due
    assert poller._backoff is None
    assert (await arrange.statuses(mailing_id)) == {"delivered": 1, "sent": 1}
    assert f"m{second.id}" in gateway.asked[-1]


async def test_the_trackers_status_lifetime_is_the_horizon(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    await arrange.mailing(lasts=timedelta(days=7))
    gateway = TrackedGateway()
    gateway.status_lifetime = timedelta(hours=1)
    engine = make_engine(gateway)
    await engine.worker.drain()
    assert engine.delivery_poller is not None

    clock.advance(hours=2)
    assert await engine.delivery_poller.poll() == 0
    assert gateway.asked == []
