"""An operator may queue a mailing's unknown reports again; nothing else re-sends them."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from sms_sender.providers.fake import FakeProvider, accept, transient, unknown
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.test_logging import json_log_lines  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("clean_db")


async def _with_unknown_reports(
    arrange: Arrange, make_engine: EngineFactory, provider: FakeProvider, count: int = 3
) -> tuple[int, FakeProvider]:
    await arrange.many_clients(count)
    mailing_id = await arrange.mailing()
    provider.default = unknown("read timeout after 1s")
    await make_engine(provider).worker.drain()
    assert await arrange.statuses(mailing_id) == {"unknown": count}
    return mailing_id, provider


async def test_resend_unknown_queues_them_again_and_logs_who_asked(
    arrange: Arrange,
    make_engine: EngineFactory,
    client: httpx.AsyncClient,
    json_log_lines: io.StringIO,  # noqa: F811
) -> None:
    provider = FakeProvider()
    mailing_id, _ = await _with_unknown_reports(arrange, make_engine, provider)

    # Every report is final, so the mailing finished; it can still send until its end_at.
    assert await arrange.mailing_status(mailing_id) == "finished"

    answer = await client.post(f"/api/v1/mailings/{mailing_id}/resend-unknown")

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"requeued": 3}
    assert await arrange.mailing_status(mailing_id) == "running"
    [report, *_] = await arrange.reports(mailing_id)
    assert report.status == "pending"
    assert report.error == "queued again by tests after an unknown outcome"
    lines = [json.loads(line) for line in json_log_lines.getvalue().splitlines() if line]
    [asked] = [line for line in lines if line["event"] == "unknown reports queued again"]
    assert (asked["mailing_id"], asked["requeued"], asked["asked_by"]) == (mailing_id, 3, "tests")

    provider.default = accept()
    await make_engine(provider).worker.drain()
    assert await arrange.statuses(mailing_id) == {"sent": 3}
    assert len(provider.calls) == 6  # each phone once lost, once sent: the operator's choice
    assert await arrange.mailing_status(mailing_id) == "finished"
    again = await client.post(f"/api/v1/mailings/{mailing_id}/resend-unknown")
    assert again.json() == {"requeued": 0}


@pytest.mark.parametrize("why", ["cancelled", "ended"])
async def test_resend_unknown_is_refused_once_the_mailing_can_no_longer_send(
    arrange: Arrange,
    make_engine: EngineFactory,
    client: httpx.AsyncClient,
    clock: FakeClock,
    why: str,
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=unknown())
    provider.on_phone("79160000002", transient())  # keeps the mailing running
    await make_engine(provider).worker.drain()
    if why == "cancelled":
        await arrange.control("cancel", mailing_id)
        words = ["is cancelled"]
    else:
        clock.advance(hours=2)  # past end_at, before the scheduler has finished it
        words = ["ended at", "end_at"]

    answer = await client.post(f"/api/v1/mailings/{mailing_id}/resend-unknown")

    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    for word in words:
        assert word in answer.json()["detail"]
    assert (await arrange.statuses(mailing_id))["unknown"] == 1


async def test_resend_unknown_of_a_paused_mailing_waits_for_resume(
    arrange: Arrange, make_engine: EngineFactory, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=unknown())
    provider.script_phone("79160000002", transient())  # keeps the mailing running
    await make_engine(provider).worker.drain()
    await arrange.control("pause", mailing_id)
    provider.default = accept()

    answer = await client.post(f"/api/v1/mailings/{mailing_id}/resend-unknown")
    clock.advance(seconds=5)  # past the transient failure's retry
    await make_engine(provider).worker.drain()

    assert answer.json() == {"requeued": 1}
    assert await arrange.statuses(mailing_id) == {"pending": 2}
    await arrange.control("resume", mailing_id)
    await make_engine(provider).worker.drain()
    assert await arrange.statuses(mailing_id) == {"sent": 2}


async def test_resend_unknown_of_a_missing_mailing_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/mailings/999999/resend-unknown")
    assert answer.status_code == 404
