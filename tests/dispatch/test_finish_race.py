"""Two workers settling a mailing's last reports at the same moment still finish it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.dispatch import repository
from sms_sender.dispatch.results import Recorder
from sms_sender.dispatch.types import Settlement
from sms_sender.reports.models import Report, ReportStatus
from tests.arrange import Arrange
from tests.conftest import FakeClock


async def test_two_workers_settling_the_last_reports_together_finish_the_mailing(
    arrange: Arrange, clean_db: AsyncEngine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await arrange.many_clients(2)
    mailing_id = await arrange.mailing()
    first, second = (report.id for report in await arrange.reports(mailing_id))
    # Each report claimed by a different worker, as two processes would hold them.
    async with clean_db.begin() as connection:
        for report_id, owner in ((first, "worker-a"), (second, "worker-b")):
            await connection.execute(
                update(Report)
                .where(Report.id == report_id)
                .values(status=ReportStatus.SENDING, lease_owner=owner, lease_expires_at=None)
            )

    # Both workers reach "is the mailing done?" before either goes on: the moment at which,
    # asked inside the settling transaction, each would still see the other's report sending.
    # (Each waits a second at most: a worker that asked inside its write would hold SQLite's
    # one write lock, and the other could not arrive.)
    asking: list[str] = []
    both_asking = asyncio.Event()
    mailings_over = repository.mailings_over

    async def over_when_both_ask(*args: Any, **kwargs: Any) -> list[int]:
        asking.append("one more")
        if len(asking) == 2:
            both_asking.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await both_asking.wait()
        return await mailings_over(*args, **kwargs)

    monkeypatch.setattr(repository, "mailings_over", over_when_both_ask)

    recorders = [Recorder(clean_db, clock, owner, "fake") for owner in ("worker-a", "worker-b")]
    batches = [
        [
            Settlement(
                report_id=report_id,
                mailing_id=mailing_id,
                client_id=None,
                status=ReportStatus.SENT,
                sent_at=clock.now(),
            )
        ]
        for report_id in (first, second)
    ]
    await asyncio.gather(
        *(recorder.record(batch) for recorder, batch in zip(recorders, batches, strict=True))
    )

    assert await arrange.statuses(mailing_id) == {"sent": 2}
    assert await arrange.mailing_status(mailing_id) == "finished"
