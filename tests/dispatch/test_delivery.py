"""What a worker does with due reports: who gets a message, and what each answer leads to."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sms_sender.config import Settings
from sms_sender.dispatch import RetryPolicy
from sms_sender.providers.fake import (
    FakeProvider,
    accept,
    hang,
    permanent,
    transient,
    unknown,
)
from sms_sender.providers.http import HttpProvider
from sms_sender.providers.registry import gateway_sessions
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, ClientSpec
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory
from tests.fakes.gateway import Answer, ProbeGateway

pytestmark = pytest.mark.usefixtures("clean_db")

# Always the longest delay, so a test knows how far to move the clock.
PREDICTABLE = RetryPolicy(max_attempts=3, base=10.0, uniform=lambda low, high: high)


async def test_the_filter_is_and_across_fields_and_or_within_one(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.clients(
        [
            ClientSpec("79160000001", "916", "vip"),  # code and tag match
            ClientSpec("79260000002", "926", "vip"),  # code and tag match
            ClientSpec("79160000003", "916", "new"),  # tag does not match
            ClientSpec("79030000004", "903", "vip"),  # code does not match
            ClientSpec("79160000005", "916", None),  # no tag
        ]
    )
    narrow = await arrange.mailing(operator_codes=["916", "926"], tags=["vip"])
    by_code = await arrange.mailing(operator_codes=["916"])
    everyone = await arrange.mailing()
    provider = FakeProvider()

    await make_engine(provider).worker.drain()

    sent_to = {mailing: set[str]() for mailing in (narrow, by_code, everyone)}
    for call in provider.calls:
        sent_to[call.message.mailing_id].add(call.message.phone)
    assert sent_to[narrow] == {"79160000001", "79260000002"}
    assert sent_to[by_code] == {"79160000001", "79160000003", "79160000005"}
    assert len(sent_to[everyone]) == 5
    assert provider.duplicates() == []
    assert await arrange.statuses(everyone) == {"sent": 5}
    for mailing in (narrow, by_code, everyone):
        assert await arrange.mailing_status(mailing) == "finished"


async def test_a_sent_report_keeps_the_providers_id_and_the_message_carries_its_snapshot(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing(text="Sale starts today", lasts=timedelta(minutes=30))
    provider = FakeProvider()

    await make_engine(provider).worker.drain()

    [report] = await arrange.reports(mailing_id)
    [call] = provider.calls
    assert (call.message.phone, call.message.text) == ("79160000001", "Sale starts today")
    assert call.message.report_id == report.id
    assert call.message.valid_for == timedelta(minutes=30)  # the time left until end_at
    assert report.status == ReportStatus.SENT
    assert report.provider == "fake"
    assert report.provider_message_id == "fake-1"
    assert report.sent_at == clock.now()
    assert report.attempts == 1
    assert (report.lease_owner, report.lease_expires_at) == (None, None)


async def test_transient_failures_are_retried_later_then_succeed(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider()
    provider.script_phone("79160000001", transient("503 from gateway"), transient("timeout"))
    worker = make_engine(provider, retry=PREDICTABLE).worker

    await worker.drain()
    waiting = [r for r in await arrange.reports(mailing_id) if r.status == ReportStatus.PENDING]
    assert [(r.phone, r.attempts, r.error) for r in waiting] == [
        ("79160000001", 1, "503 from gateway")
    ]
    assert waiting[0].next_attempt_at == clock.now() + timedelta(seconds=10)

    await worker.drain()  # not due yet: nothing is sent early
    assert len(provider.calls) == 3 - 1

    clock.advance(seconds=10)
    await worker.drain()
    clock.advance(seconds=20)  # the second delay doubles
    await worker.drain()

    report = next(r for r in await arrange.reports(mailing_id) if r.phone == "79160000001")
    assert (report.status, report.attempts, report.error) == (ReportStatus.SENT, 3, None)
    assert await arrange.statuses(mailing_id) == {"sent": 2}
    assert provider.duplicates() == []


async def test_retries_run_out_and_the_report_fails_with_the_last_reason(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=transient("gateway unavailable"))
    worker = make_engine(provider, retry=PREDICTABLE).worker

    for _ in range(PREDICTABLE.max_attempts):
        await worker.drain()
        clock.advance(minutes=1)

    [report] = await arrange.reports(mailing_id)
    assert report.status == ReportStatus.FAILED
    assert report.attempts == 3
    assert report.error == "gave up after 3 attempts: gateway unavailable"
    assert len(provider.calls) == 3


async def test_a_permanent_rejection_fails_at_once_with_the_providers_reason(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider()
    provider.on_phone("79160000002", permanent("phone is on the stop list"))

    await make_engine(provider).worker.drain()

    reports = {r.phone: r for r in await arrange.reports(mailing_id)}
    assert reports["79160000002"].status == ReportStatus.FAILED
    assert reports["79160000002"].error == "phone is on the stop list"
    assert reports["79160000002"].attempts == 1
    assert reports["79160000001"].status == ReportStatus.SENT
    assert await arrange.mailing_status(mailing_id) == "finished"


async def test_an_unparseable_answer_is_never_taken_for_a_success_nor_sent_again(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    async with ProbeGateway(token="t0ken") as gateway, gateway_sessions(Settings()) as sessions:
        gateway.script(79160000001, Answer.GARBAGE, Answer.OK)
        gateway.script(79160000002, Answer.NO_CODE, Answer.OK)
        provider = HttpProvider(sessions.sends, url=gateway.url, token="t0ken", timeout=5)
        retry = RetryPolicy(max_attempts=2, base=1.0, uniform=lambda low, high: high)
        worker = make_engine(provider, retry=retry).worker
        await worker.drain()
        clock.advance(minutes=1)
        await worker.drain()

    reports = await arrange.reports(mailing_id)
    # The gateway may have acted on a request whose answer it garbled: never sent twice.
    assert sorted(gateway.received_by_phone.values()) == [1, 1]
    assert {r.status for r in reports} == {ReportStatus.UNKNOWN}
    assert all("unparseable answer" in (r.error or "") for r in reports)


async def test_a_hung_provider_call_is_abandoned_as_unknown_not_retried(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider()
    provider.on_phone("79160000001", hang())

    # The engine gives a call half the lease; after that the outcome counts as unknown.
    await make_engine(provider, lease_seconds=0.2).worker.drain()

    reports = {r.phone: r for r in await arrange.reports(mailing_id)}
    assert reports["79160000001"].status == ReportStatus.UNKNOWN
    assert "no answer within 0.1s" in (reports["79160000001"].error or "")
    assert reports["79160000002"].status == ReportStatus.SENT
    provider.release()


async def test_an_idempotent_provider_is_asked_again_after_an_unknown_outcome(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider(idempotent=True)
    provider.script_phone("79160000001", hang(), accept())
    worker = make_engine(provider, lease_seconds=0.2, retry=PREDICTABLE).worker

    await worker.drain()
    [report] = await arrange.reports(mailing_id)
    assert report.status == ReportStatus.PENDING
    clock.advance(seconds=10)
    await worker.drain()

    [report] = await arrange.reports(mailing_id)
    assert (report.status, report.attempts) == (ReportStatus.SENT, 2)
    provider.release()


async def test_an_unknown_outcome_is_recorded_with_its_reason_and_never_sent_again(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider()
    provider.on_phone("79160000001", unknown("read timeout after 1s"))
    worker = make_engine(provider, retry=PREDICTABLE).worker

    await worker.drain()
    clock.advance(minutes=5)  # past any retry the policy could have given
    await worker.drain()

    reports = {r.phone: r for r in await arrange.reports(mailing_id)}
    lost = reports["79160000001"]
    assert (lost.status, lost.attempts) == (ReportStatus.UNKNOWN, 1)
    assert lost.error == (
        "outcome unknown (read timeout after 1s); not sent again to avoid a duplicate"
    )
    assert reports["79160000002"].status == ReportStatus.SENT
    assert [call.message.phone for call in provider.calls].count("79160000001") == 1
    assert await arrange.mailing_status(mailing_id) == "finished"


async def test_an_unknown_outcome_is_retried_when_the_provider_deduplicates(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider(idempotent=True)
    provider.script_phone("79160000001", unknown("connection reset"))
    worker = make_engine(provider, retry=PREDICTABLE).worker

    await worker.drain()
    [report] = await arrange.reports(mailing_id)
    assert report.status == ReportStatus.PENDING
    assert report.error == "outcome unknown: connection reset"
    clock.advance(seconds=10)
    await worker.drain()

    [report] = await arrange.reports(mailing_id)
    assert (report.status, report.attempts) == (ReportStatus.SENT, 2)


async def test_a_retry_waits_at_least_as_long_as_the_gateway_asked(
    arrange: Arrange, make_engine: EngineFactory, clock: FakeClock
) -> None:
    await arrange.clients([ClientSpec("79160000001"), ClientSpec("79160000002")])
    mailing_id = await arrange.mailing()
    provider = FakeProvider()
    provider.script_phone("79160000001", transient("429 too many requests", retry_after=120))
    provider.script_phone("79160000002", transient("503 busy", retry_after=1))
    worker = make_engine(provider, retry=PREDICTABLE).worker
    start = clock.now()

    await worker.drain()

    reports = {r.phone: r for r in await arrange.reports(mailing_id)}
    # Longer than the policy's delay (10 s here): the gateway's; shorter: the policy's.
    assert reports["79160000001"].next_attempt_at == start + timedelta(seconds=120)
    assert reports["79160000002"].next_attempt_at == start + timedelta(seconds=10)
    clock.advance(seconds=60)
    await worker.drain()
    assert [call.message.phone for call in provider.calls].count("79160000001") == 1
    clock.advance(seconds=60)
    await worker.drain()
    assert await arrange.statuses(mailing_id) == {"sent": 2}


async def test_concurrency_bounds_the_sends_in_flight(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    await arrange.many_clients(40)
    mailing_id = await arrange.mailing()
    provider = FakeProvider(default=accept(delay=0.005))

    await make_engine(provider, concurrency=4, batch_size=7).worker.drain()

    assert provider.max_in_flight == 4
    assert await arrange.statuses(mailing_id) == {"sent": 40}
    assert provider.duplicates() == []
