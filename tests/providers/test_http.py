"""The HTTP ("probe") provider against the fake gateway on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from sms_sender.providers import HttpProvider, Outcome, SendResult
from tests.fakes.gateway import Answer, ProbeGateway
from tests.providers.conftest import TOKEN, MessageFactory


@pytest.fixture
async def provider(gateway: ProbeGateway) -> AsyncIterator[HttpProvider]:
    http = HttpProvider(url=gateway.url, token=TOKEN, timeout=1.0)
    yield http
    await http.aclose()


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
    gateway.script(79000000002, Answer.SERVER_ERROR)
    batch = [make_message(phone=f"7900000000{n}") for n in range(1, 4)]

    results = await provider.send(batch)

    assert [result.outcome for result in results] == [
        Outcome.ACCEPTED,
        Outcome.TRANSIENT,
        Outcome.ACCEPTED,
    ]
    assert sorted(gateway.accepted_ids) == [1, 3]


async def test_batch_is_sent_concurrently(
    gateway: ProbeGateway, make_message: MessageFactory
) -> None:
    gateway.latency = 0.3
    provider = HttpProvider(url=gateway.url, token=TOKEN, timeout=5.0)
    try:
        started = asyncio.get_running_loop().time()
        results = await provider.send([make_message() for _ in range(20)])
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        await provider.aclose()

    assert all(result.outcome is Outcome.ACCEPTED for result in results)
    assert elapsed < 2.0  # twenty sends one after another would take at least 6 s


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
        (Answer.SERVER_ERROR, Outcome.TRANSIENT, "HTTP 500: <html><body>Internal Server Error"),
        (Answer.TOO_MANY_REQUESTS, Outcome.TRANSIENT, "HTTP 429: slow down"),
        (Answer.BAD_REQUEST, Outcome.PERMANENT, "HTTP 400: text is too long"),
        (Answer.REJECT, Outcome.PERMANENT, "rejected with code 3: phone is on the stop list"),
        (Answer.GARBAGE, Outcome.TRANSIENT, "unparseable answer: <html><body>Welcome to nginx!"),
        (Answer.NO_CODE, Outcome.TRANSIENT, 'unparseable answer: {"status": "queued"}'),
        (Answer.HANG_UP, Outcome.TRANSIENT, "connection error: the gateway closed the connection"),
    ],
)
async def test_error_answers_are_classified(
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
    assert gateway.accepted_ids == []


async def test_wrong_token_is_a_permanent_failure_with_the_reason(
    gateway: ProbeGateway, make_message: MessageFactory
) -> None:
    provider = HttpProvider(url=gateway.url, token="not-the-token", timeout=1.0)
    try:
        result = await send_one(provider, make_message)
    finally:
        await provider.aclose()

    assert result == SendResult.permanent("HTTP 401: invalid or missing token")


async def test_slow_gateway_times_out_as_transient(
    gateway: ProbeGateway, make_message: MessageFactory
) -> None:
    gateway.script(79001234567, Answer.SLOW)
    provider = HttpProvider(url=gateway.url, token=TOKEN, timeout=0.2)
    try:
        result = await send_one(provider, make_message)
        after_timeout = await send_one(provider, make_message)
    finally:
        await provider.aclose()

    assert result == SendResult.transient("timeout: no answer within 0.2s")
    # The timed-out connection is not reused: the next send gets its own, clean answer.
    assert after_timeout.outcome is Outcome.ACCEPTED


async def test_unreachable_gateway_is_a_transient_connection_error(
    make_message: MessageFactory,
) -> None:
    closed = ProbeGateway()
    async with closed:
        url = closed.url  # a port that was just free and is closed again below
    provider = HttpProvider(url=url, token=TOKEN, timeout=1.0)
    try:
        result = await send_one(provider, make_message)
    finally:
        await provider.aclose()

    assert result.outcome is Outcome.TRANSIENT
    assert result.error is not None
    assert result.error.startswith("connection error: cannot connect to 127.0.0.1:")


async def test_base_url_path_is_kept(gateway: ProbeGateway, make_message: MessageFactory) -> None:
    provider = HttpProvider(url=f"{gateway.url}/api/v1/", token=TOKEN, timeout=1.0)
    try:
        result = await send_one(provider, make_message, report_id=7)
    finally:
        await provider.aclose()

    assert result.outcome is Outcome.ACCEPTED
    assert gateway.requests[0].path == "/api/v1/send/7"


async def test_a_message_whose_end_passes_while_it_waits_for_a_connection_is_not_written(
    gateway: ProbeGateway, make_message: MessageFactory
) -> None:
    """The end_at check is repeated right before the request is written to the socket."""
    single = HttpProvider(url=gateway.url, token=TOKEN, timeout=5.0, max_connections=1)
    gateway.script(79000000001, Answer.SLOW)  # holds the only connection for slow_seconds
    slow = make_message(phone="79000000001")
    short_lived = dataclasses.replace(
        make_message(phone="79000000002"), valid_for=timedelta(milliseconds=200)
    )
    try:
        results = await single.send([slow, short_lived])
    finally:
        await single.aclose()

    assert results[0].outcome is Outcome.ACCEPTED
    assert results[1].outcome is Outcome.EXPIRED
    assert [request.path for request in gateway.requests] == [f"/send/{slow.report_id}"]
