"""A provider account out of money pauses the mailing; resume after a top-up sends the rest."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from prometheus_client import REGISTRY

from sms_sender.mailings.models import Mailing
from sms_sender.providers.fake import FakeProvider, accept, no_funds
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange
from tests.dispatch.conftest import EngineFactory, eventually
from tests.dispatch.test_logging import json_log_lines  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("clean_db")


def _paused_count() -> float:
    value = REGISTRY.get_sample_value("sms_sender_mailings_paused_total", {"provider": "fake"})
    return value or 0.0


async def _paused_reason(arrange: Arrange, mailing_id: int) -> str | None:
    async with arrange.sessionmaker() as session:
        mailing = await session.get(Mailing, mailing_id)
        assert mailing is not None
        return mailing.paused_reason


async def test_no_funds_pauses_the_mailing_and_resume_sends_the_rest(
    arrange: Arrange,
    make_engine: EngineFactory,
    json_log_lines: io.StringIO,  # noqa: F811
) -> None:
    await arrange.many_clients(20)
    provider = FakeProvider(default=no_funds("402 Insufficient funds"))
    paused_before = _paused_count()

    async with make_engine(provider, concurrency=2, batch_size=5).running():
        mailing_id = await arrange.mailing()

        async def paused() -> bool:
            return await arrange.mailing_status(mailing_id) == "paused"

        await eventually(paused, what="the mailing paused")

        async def all_released() -> bool:
            reports = await arrange.reports(mailing_id)
            return all(r.lease_owner is None for r in reports)

        await eventually(all_released, what="every claimed report released")
        refused = len(provider.calls)
        assert await _paused_reason(arrange, mailing_id) == "402 Insufficient funds"
        for report in await arrange.reports(mailing_id):
            # Not failed, and the refused attempt is not counted against the report.
            assert (report.status, report.attempts) == (ReportStatus.PENDING, 0)
        assert 1 <= refused <= 2  # only the sends already in flight went out
        assert _paused_count() == paused_before + 1

        provider.default = accept()  # the account was topped up
        await arrange.control("resume", mailing_id)

        async def finished() -> bool:
            return await arrange.mailing_status(mailing_id) == "finished"

        await eventually(finished, what="the mailing finished after resume")

    assert await arrange.statuses(mailing_id) == {"sent": 20}
    assert await _paused_reason(arrange, mailing_id) is None
    assert provider.duplicates() == []
    lines = [json.loads(line) for line in json_log_lines.getvalue().splitlines() if line]
    [pause_line] = [line for line in lines if line["event"].startswith("mailing paused")]
    assert pause_line["mailing_id"] == mailing_id
    assert pause_line["reason"] == "402 Insufficient funds"


async def test_the_api_shows_why_the_engine_paused_a_mailing(
    arrange: Arrange, make_engine: EngineFactory, client: httpx.AsyncClient
) -> None:
    await arrange.many_clients(3)
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=no_funds("no credits"))

    async with make_engine(provider).running():

        async def paused() -> bool:
            return await arrange.mailing_status(mailing_id) == "paused"

        await eventually(paused, what="the mailing paused")

    shown = (await client.get(f"/api/v1/mailings/{mailing_id}")).json()
    assert (shown["status"], shown["paused_reason"]) == ("paused", "no credits")
    resumed = (await client.post(f"/api/v1/mailings/{mailing_id}/resume")).json()
    assert (resumed["status"], resumed["paused_reason"]) == ("running", None)
