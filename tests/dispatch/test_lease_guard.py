"""DESIGN rule 5: a worker whose lease was taken over never overwrites the new owner's report.

Every statement a worker makes on a report it holds names the lease owner it expects. Here a
slow worker (A) hands a report over, loses it (its heartbeat stopped: taken over), another
worker (B) sends it again through an idempotent provider, and only then do A's late writes
arrive. Each must change nothing; remove the owner from any of their guards and this fails.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.dialects import begin_write
from sms_sender.dispatch import repository
from sms_sender.dispatch.repository import Settlement
from sms_sender.reports.models import Report, ReportStatus
from tests.arrange import Arrange
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

SLOW, NEW = "host-a:1:0000000a", "host-b:2:0000000b"


async def _claim_and_hand_over(clean_db: AsyncEngine, owner: str, clock: FakeClock) -> int:
    now = clock.now()
    async with begin_write(clean_db) as connection:
        [claimed] = await repository.claim(
            connection, owner=owner, now=now, lease_until=now + timedelta(minutes=1), limit=1
        )
        marked = await repository.hand_over(
            connection,
            [claimed.id],
            owner=owner,
            provider="fake",
            now=now,
            lease_until=now + timedelta(minutes=1),
        )
    assert list(marked) == [claimed.id]
    return claimed.id


async def _report(arrange: Arrange, mailing_id: int) -> Report:
    [report] = await arrange.reports(mailing_id)
    return report


async def test_a_late_answer_of_a_worker_that_lost_its_lease_changes_nothing(
    arrange: Arrange, clean_db: AsyncEngine, clock: FakeClock
) -> None:
    await arrange.many_clients(1)
    mailing_id = await arrange.mailing()
    report_id = await _claim_and_hand_over(clean_db, SLOW, clock)
    async with begin_write(clean_db) as connection:  # SLOW's heartbeat stopped: taken over
        await repository.reclaim(
            connection,
            now=clock.now(),
            in_flight=[],
            resendable_provider="fake",
            dead_owners=[SLOW],
        )
    assert await _claim_and_hand_over(clean_db, NEW, clock) == report_id
    before = await _report(arrange, mailing_id)
    assert (before.status, before.lease_owner) == (ReportStatus.SENDING, NEW)

    now = clock.now()
    late = Settlement(
        report_id=report_id,
        mailing_id=mailing_id,
        client_id=before.client_id,
        status=ReportStatus.SENT,
        provider_message_id="late answer to the slow worker",
        sent_at=now,
    )
    async with begin_write(clean_db) as connection:
        assert await repository.settle(connection, [late], owner=SLOW, now=now) == 0
        assert await repository.renew(connection, [report_id], owner=SLOW, lease_until=now) == 0
        assert await repository.release(connection, [report_id], owner=SLOW) == 0
        assert await repository.put_off(connection, {report_id: now}, owner=SLOW, now=now) == 0

    after = await _report(arrange, mailing_id)
    assert (after.status, after.lease_owner, after.provider_message_id) == (
        ReportStatus.SENDING,
        NEW,
        None,
    )
    assert after.lease_expires_at == before.lease_expires_at
