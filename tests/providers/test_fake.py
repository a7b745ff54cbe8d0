"""The in-memory fake provider that engine tests script and inspect."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from sms_sender.providers import FakeProvider, Outcome, SendResult
from sms_sender.providers.fake import FakeCall, accept, hang, permanent, transient
from tests.conftest import FakeClock
from tests.providers.conftest import MessageFactory


async def test_accepts_everything_by_default_and_records_calls(
    make_message: MessageFactory,
) -> None:
    clock = FakeClock(datetime(2030, 1, 1, 9, 0, tzinfo=UTC))
    provider = FakeProvider(clock=clock)

    results = await provider.send([make_message(), make_message()])

    assert [result.outcome for result in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert len({result.provider_message_id for result in results}) == 2
    assert provider.report_ids() == [1, 2]
    assert provider.accepted_report_ids() == [1, 2]
    assert provider.batch_sizes == [2]
    assert [call.started_at for call in provider.calls] == [clock.current, clock.current]
    assert provider.duplicates() == []


async def test_phone_script_runs_once_then_falls_back_to_default(
    make_message: MessageFactory,
) -> None:
    provider = FakeProvider()
    provider.script_phone("79000000001", transient("down"), transient("down"))

    outcomes = [
        (await provider.send([make_message(phone="79000000001", report_id=7)]))[0] for _ in range(3)
    ]

    assert outcomes[:2] == [SendResult.transient("down")] * 2
    assert outcomes[2].outcome is Outcome.ACCEPTED
    assert provider.duplicates() == []  # one acceptance among three calls


async def test_standing_phone_rule_and_shared_script(make_message: MessageFactory) -> None:
    provider = FakeProvider()
    provider.on_phone("79000000009", permanent("blocked"))
    provider.script(transient("busy"))

    results = await provider.send(
        [
            make_message(phone="79000000001"),
            make_message(phone="79000000009"),
            make_message(phone="79000000001"),
        ]
    )

    assert results == [
        SendResult.transient("busy"),
        SendResult.permanent("blocked"),
        SendResult.accepted("fake-3"),
    ]


async def test_repeated_acceptance_is_reported_as_a_duplicate(
    make_message: MessageFactory,
) -> None:
    provider = FakeProvider()

    await provider.send([make_message(report_id=5)])
    await provider.send([make_message(report_id=5)])

    assert provider.duplicates() == [5]


async def test_a_hanging_phone_does_not_hold_up_the_rest_of_the_batch(
    make_message: MessageFactory,
) -> None:
    provider = FakeProvider()
    provider.on_phone("79000000001", hang())

    sending = asyncio.create_task(
        provider.send([make_message(phone="79000000001"), make_message(phone="79000000002")])
    )
    await provider.wait_for_results(1)

    assert provider.in_flight == 1
    assert provider.accepted_report_ids() == [2]
    provider.release()
    results = await sending
    assert [result.outcome for result in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED]


async def test_cancelled_call_is_marked_and_leaves_no_result(
    make_message: MessageFactory,
) -> None:
    provider = FakeProvider(default=hang())

    sending = asyncio.create_task(provider.send([make_message()]))
    await provider.wait_for_calls(1)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending

    (call,) = provider.calls
    assert call.cancelled
    assert call.result is None
    assert provider.in_flight == 0


async def test_delay_and_concurrency_are_observable(make_message: MessageFactory) -> None:
    provider = FakeProvider(default=accept(delay=0.05))

    await provider.send([make_message() for _ in range(5)])

    assert provider.max_in_flight == 5
    assert all(call.finished_at is not None for call in provider.calls)


async def test_on_call_hook_sees_each_call_as_it_starts(make_message: MessageFactory) -> None:
    clock = FakeClock(datetime(2030, 1, 1, 9, 0, tzinfo=UTC))
    seen: list[int] = []

    def advance_clock(call: FakeCall) -> None:
        seen.append(call.report_id)
        clock.advance(seconds=10)

    provider = FakeProvider(clock=clock, on_call=advance_clock)
    await provider.send([make_message()])
    await provider.send([make_message()])

    assert seen == [1, 2]
    assert provider.calls[1].started_at == datetime(2030, 1, 1, 9, 0, 10, tzinfo=UTC)


async def test_waiting_for_calls_that_never_come_says_what_it_saw() -> None:
    provider = FakeProvider()

    with pytest.raises(TimeoutError, match=r"waited 0\.05s for 3 calls; saw 0 calls"):
        await provider.wait_for_calls(3, within=0.05)


async def test_can_pose_as_an_idempotent_provider() -> None:
    assert FakeProvider(idempotent=True).idempotent is True
    assert FakeProvider().idempotent is False
