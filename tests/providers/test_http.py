"""The HTTP ("probe") provider against the fake gateway on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from sms_sender.providers import (
    GatewaySessions,
    HttpProvider,
    Outcome,
    SendResult,
    create_session,
)
from tests.fakes.gateway import STRAY_ID, Answer, ProbeGateway
from tests.providers.conftest import TOKEN, MessageFactory


@pytest.fixture
def provider(gateway: ProbeGateway, sessions: GatewaySessions) -> HttpProvider:
    return HttpProvider(sessions.sends, url=gateway.url, token=TOKEN, timeout=1.0)


@pytest.fixture
async def single_connection() -> AsyncIterator[Any]:
    session = create_session(max_connections=1)
    yield session
    await session.close()


async def send_one(
    provider: HttpProvider, make_message: MessageFactory, **fields: Any
) -> SendResult:
    (result,) = await provider.send([make_message(**fields)])
    return result


async def test_accepted_message_is_posted_with_token_and_integer_phone(
    provider: HttpProvider, gateway: ProbeGateway, make_message: MessageFactory
) -> None:
    result = await send_one(provider, make_message, phone="79001234567", text="Привет")

    assert result == SendResult.accepted("1")
    (request,) = gateway.requests
    assert request.method == "POST"
    assert request.path == "/send/1"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"id": 1, "phone": 79001234567, "text": "Привет"}
    assert gateway.accepted_ids == [1]


async def test_batch_gets_one_result_per_message_in_order(
    provider: HttpProvider, gateway: ProbeGateway, make_message: MessageFactory
) -> None:
    gateway.script(79000000002, Answer.REJECT)
    batch = [make_message(phone=f"7900000000{n}") for n in range(1, 4)]

    results = await provider.send(batch)

    assert [result.outcome for result in results] == [
        Outcome.ACCEPTED,
        Outcome.PERMANENT,
        Outcome.ACCEPTED,
    ]
    assert sorted(gateway.accepted_ids) == [1, 3]


async def test_batch_is_sent_concurrently(
    provider: HttpProvider, gateway: ProbeGateway, make_message: MessageFactory
) -> None:
    gateway.latency = 0.3
    started = asyncio.get_running_loop().time()
    results = await provider.send([make_message() for _ in range(10)])
    elapsed = asyncio.get_running_loop().time() - started

    assert all(result.outcome is Outcome.ACCEPTED for result in results)
    assert elapsed < 2.0  # ten sends one after another would take at least 3 s


async def test_connections_are_kept_alive_between_batches(
    provider: HttpProvider, gateway: ProbeGateway, make_message: MessageFactory
) -> None:
    for _ in range(5):
        await provider.send([make_message()])

    assert len(gateway.accepted_ids) == 5
    assert gateway.connections_opened == 1


@pytest.mark.parametrize(
    ("answer", "outcome", "error"),
    [
        # The gateway said "not now": nothing was taken, Retry-After is kept.
        (Answer.TOO_MANY_REQUESTS, Outcome.TRANSIENT, "HTTP 429: slow down"),
        (Answer.UNAVAILABLE, Outcome.TRANSIENT, "HTTP 503: <html><body>Service Unavailable"),
        # An explicit refusal.
        (Answer.BAD_REQUEST, Outcome.PERMANENT, "HTTP 400: text is too long"),
        (Answer.REJECT, Outcome.PERMANENT, "rejected with code 3: phone is on the stop list"),
        # The request was written and no clear answer came: the gateway may have it.
        (Answer.SERVER_ERROR, Outcome.UNKNOWN, "HTTP 500: <html><body>Internal Server Error"),
        (Answer.BAD_GATEWAY, Outcome.UNKNOWN, "HTTP 502: <html><body>502 Bad Gateway"),
        (Answer.GATEWAY_TIMEOUT, Outcome.UNKNOWN, "HTTP 504: <html><body>504 Gateway Time-out"),
        (Answer.GARBAGE, Outcome.UNKNOWN, "unparseable answer: <html><body>Welcome to nginx!"),
        (Answer.NO_CODE, Outcome.UNKNOWN, 'unparseable answer: {"status": "queued"}'),
        (Answer.HANG_UP, Outcome.UNKNOWN, "the gateway closed the connection without an answer"),
        (Answer.RESET, Outcome.UNKNOWN, "connection error after the request was written"),
        (Answer.HUGE, Outcome.UNKNOWN, "answer larger than 64 KiB"),
        (Answer.LONG_ID, Outcome.UNKNOWN, "the gateway returned an id of 300 characters"),
    ],
)
async def test_answers_are_classified_by_when_they_failed(
    provider: HttpProvider,
    gateway: ProbeGateway,
    make_message: MessageFactory,
    answer: Answer,
    outcome: Outcome,
    error: str,
) -> None:
    gateway.script(79001234567, answer)

    result = await send_one(provider, make_message)

    assert result.outcome is outcome
    assert result.error is not None
    assert result.error.startswith(error)
    assert len(gateway.received) == 1


@pytest.mark.parametrize(
    ("answer", "seconds"), [(Answer.TOO_MANY_REQUESTS, 1.0), (Answer.UNAVAILABLE, 2.0)]
)
async def test_retry_after_in_seconds_or_as_a_date_is_passed_on(
    provider: HttpProvider,
    gateway: ProbeGateway,
    make_message: MessageFactory,
    answer: Answer,
    seconds: float,
) -> None:
    gateway.script(79001234567, answer)

    result = await send_one(provider, make_message)

    assert result.retry_after is not None
    assert seconds - 1.1 <= result.retry_after <= seconds


@pytest.mark.parametrize("stray", [Answer.STRAY, Answer.STRAY_LATER])
async def test_a_stray_answer_is_never_read_as_the_next_answer(
    gateway: ProbeGateway, single_connection: Any, make_message: MessageFactory, stray: Answer
) -> None:
    """The gateway appends a forged acceptance (at once, or later on the idle connection)."""
    provider = HttpProvider(single_connection, url=gateway.url, token=TOKEN, timeout=1.0)
    gateway.script(79000000001, stray)
    gateway.script(79000000002, Answer.REJECT)

    first = await send_one(provider, make_message, phone="79000000001")
    await asyncio.sleep(0.2)  # a later stray answer arrives while the connection is idle
    second = await send_one(provider, make_message, phone="79000000002")

    assert first == SendResult.accepted("1")
    assert second.outcome is Outcome.PERMANENT
    assert second.provider_message_id != STRAY_ID
    assert gateway.connections_opened == 2  # the dirty connection was closed, not reused


async def test_wrong_token_is_a_permanent_failure_with_the_reason(
    gateway: ProbeGateway, sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    provider = HttpProvider(sessions.sends, url=gateway.url, token="not-the-token", timeout=1.0)

    result = await send_one(provider, make_message)

    assert result == SendResult.permanent("HTTP 401: invalid or missing token")


async def test_a_gateway_slower_than_the_timeout_leaves_the_outcome_unknown(
    gateway: ProbeGateway, sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    gateway.script(79001234567, Answer.SLOW)
    provider = HttpProvider(sessions.sends, url=gateway.url, token=TOKEN, timeout=0.2)

    result = await send_one(provider, make_message)
    after_timeout = await send_one(provider, make_message)

    assert result == SendResult.unknown("timeout: no answer within 0.2s")
    assert gateway.accepted_ids[0] == 1  # the gateway did take it
    # The timed-out connection is not reused: the next send gets its own, clean answer.
    assert after_timeout == SendResult.accepted("2")


async def test_unreachable_gateway_is_transient_nothing_was_sent(
    sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    closed = ProbeGateway()
    async with closed:
        url = closed.url  # a port that was just free and is closed again below
    provider = HttpProvider(sessions.sends, url=url, token=TOKEN, timeout=1.0)

    result = await send_one(provider, make_message)

    assert result.outcome is Outcome.TRANSIENT
    assert result.error is not None
    assert result.error.startswith("connection error: cannot connect to 127.0.0.1:")


async def test_unresolvable_host_is_transient(
    sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    provider = HttpProvider(
        sessions.sends, url="http://no-such-host.invalid", token=TOKEN, timeout=2.0
    )

    result = await send_one(provider, make_message)

    assert result.outcome is Outcome.TRANSIENT
    assert result.error == "connection error: cannot resolve no-such-host.invalid"


async def test_no_pooled_connection_in_time_is_transient(
    gateway: ProbeGateway, single_connection: Any, make_message: MessageFactory
) -> None:
    patient = HttpProvider(single_connection, url=gateway.url, token=TOKEN, timeout=5.0)
    hasty = HttpProvider(single_connection, url=gateway.url, token=TOKEN, timeout=0.3)
    gateway.slow_seconds = 0.8
    gateway.script(79000000001, Answer.SLOW)  # holds the only connection past 0.3 s

    slow, waiting = await asyncio.gather(
        patient.send([make_message(phone="79000000001")]),
        hasty.send([make_message(phone="79000000002")]),
    )

    assert slow[0].outcome is Outcome.ACCEPTED
    assert waiting == [SendResult.transient("timeout: no connection to the gateway within 0.3s")]
    assert [message.phone for message in gateway.received] == [79000000001]


async def test_base_url_path_is_kept(
    gateway: ProbeGateway, sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    provider = HttpProvider(sessions.sends, url=f"{gateway.url}/api/v1/", token=TOKEN, timeout=1.0)

    result = await send_one(provider, make_message, report_id=7)

    assert result.outcome is Outcome.ACCEPTED
    assert gateway.requests[0].path == "/api/v1/send/7"


async def test_idempotent_is_what_the_operator_says(
    gateway: ProbeGateway, sessions: GatewaySessions
) -> None:
    plain = HttpProvider(sessions.sends, url=gateway.url, token=TOKEN, timeout=1.0)
    vouched = HttpProvider(
        sessions.sends, url=gateway.url, token=TOKEN, timeout=1.0, idempotent=True
    )

    assert (plain.idempotent, vouched.idempotent) == (False, True)


async def test_a_message_whose_end_passes_while_it_waits_for_a_connection_is_not_written(
    gateway: ProbeGateway, single_connection: Any, make_message: MessageFactory
) -> None:
    """The end_at check is repeated right before the request is written to the socket."""
    single = HttpProvider(single_connection, url=gateway.url, token=TOKEN, timeout=5.0)
    gateway.script(79000000001, Answer.SLOW)  # holds the only connection for slow_seconds
    slow = make_message(phone="79000000001")
    short_lived = dataclasses.replace(
        make_message(phone="79000000002"), valid_for=timedelta(milliseconds=200)
    )

    results = await single.send([slow, short_lived])

    assert results[0].outcome is Outcome.ACCEPTED
    assert results[1].outcome is Outcome.EXPIRED
    assert [request.path for request in gateway.requests] == [f"/send/{slow.report_id}"]


async def test_a_proxy_that_refuses_the_tunnel_is_transient_nothing_reached_the_gateway(
    gateway: ProbeGateway,
    sessions: GatewaySessions,
    make_message: MessageFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTPS_PROXY from the environment; the fake gateway plays a proxy that answers 401."""
    monkeypatch.setenv("HTTPS_PROXY", gateway.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    provider = HttpProvider(sessions.sends, url="https://gateway.example", token=TOKEN, timeout=1.0)

    result = await send_one(provider, make_message)

    assert result == SendResult.transient("the proxy refused to connect to the gateway: HTTP 401")
    assert [request.method for request in gateway.requests] == ["CONNECT"]
