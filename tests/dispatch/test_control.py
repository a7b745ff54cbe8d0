"""pause, resume and cancel take effect within a second, even for reports a worker holds."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from sqlalchemy import select

from sms_sender.clients import service as clients_service
from sms_sender.consent.rules import PhoneHasher
from sms_sender.providers.base import OutgoingMessage, SendResult
from sms_sender.providers.fake import FakeProvider, hang
from sms_sender.reports.models import Report
from tests.arrange import Arrange
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")


async def held_by_a_worker(arrange: Arrange, mailing_id: int) -> int:
    async with arrange.sessionmaker() as session:
        leases = await session.scalars(
            select(Report.lease_owner).where(
                Report.mailing_id == mailing_id, Report.status == "pending"
            )
        )
        return sum(1 for owner in leases if owner is not None)


async def test_pause_stops_sending_within_a_second_and_resume_finishes_the_mailing(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.many_clients(30)
    provider = FakeProvider(default=hang())  # each call waits until the test releases it
    async with make_engine(provider, concurrency=3).running():
        mailing_id = await arrange.mailing()
        await provider.wait_for_calls(3)

        await arrange.control("pause", mailing_id)
        paused_at = time.monotonic()
        provider.release()  # the three calls in flight answer; nothing new may start

        async def released() -> bool:
            return await held_by_a_worker(arrange, mailing_id) == 0

        await eventually(released, within=1.0, what="the worker letting go of the mailing")
        assert time.monotonic() - paused_at < 1.0
        await eventually(lambda: _count(arrange, mailing_id, "sent", 3), what="in-flight sent")
        assert len(provider.calls) == 3
        assert await arrange.statuses(mailing_id) == {"sent": 3, "pending": 27}

        await arrange.control("resume", mailing_id)
        await provider.wait_for_results(30)

    assert await arrange.statuses(mailing_id) == {"sent": 30}
    assert await arrange.mailing_status(mailing_id) == "finished"
    assert provider.duplicates() == []


async def test_cancel_marks_what_was_not_sent_and_sends_nothing_more(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.many_clients(30)
    provider = FakeProvider(default=hang())
    async with make_engine(provider, concurrency=3).running():
        mailing_id = await arrange.mailing()
        await provider.wait_for_calls(3)

        await arrange.control("cancel", mailing_id)
        provider.release()
        # The three calls in flight were with the gateway already: their answers are kept.
        await eventually(lambda: _count(arrange, mailing_id, "sent", 3), what="in-flight sent")

    assert await arrange.statuses(mailing_id) == {"sent": 3, "cancelled": 27}
    assert len(provider.calls) == 3
    assert await arrange.mailing_status(mailing_id) == "cancelled"


class DeletesTheOtherClientFirst(FakeProvider):
    """Before its first send, the other client is deleted (its pending report cancelled)."""

    def __init__(self, arrange: Arrange, client_ids: list[int]) -> None:
        super().__init__()
        self.arrange = arrange
        self.client_ids = client_ids

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        if not self.calls:
            [other] = [i for i in self.client_ids if i != batch[0].client_id]
            async with self.arrange.sessionmaker() as session, session.begin():
                now = self.arrange.clock.now()
                await clients_service.delete(session, other, hasher=PhoneHasher(b"test"), now=now)
        return await super().send(batch)


async def test_a_report_cancelled_while_a_worker_holds_it_is_not_sent(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    client_ids = await arrange.many_clients(2)
    mailing_id = await arrange.mailing()
    provider = DeletesTheOtherClientFirst(arrange, client_ids)

    # One at a time: the second report is claimed (held) while the first is being sent.
    await make_engine(provider, concurrency=1).worker.drain()

    assert len(provider.calls) == 1
    assert await arrange.statuses(mailing_id) == {"sent": 1, "cancelled": 1}


async def test_a_paused_mailing_is_not_claimed_by_any_worker(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.many_clients(5)
    mailing_id = await arrange.mailing()
    await arrange.control("pause", mailing_id)
    provider = FakeProvider()

    await make_engine(provider).worker.drain()
    assert provider.calls == []
    assert await held_by_a_worker(arrange, mailing_id) == 0

    await arrange.control("resume", mailing_id)
    await make_engine(provider).worker.drain()
    assert await arrange.statuses(mailing_id) == {"sent": 5}


async def _count(arrange: Arrange, mailing_id: int, status: str, expected: int) -> bool:
    return (await arrange.statuses(mailing_id))[status] == expected
