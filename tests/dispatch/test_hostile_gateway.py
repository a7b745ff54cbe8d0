"""A hostile gateway in its own process, through the real engine: delivery truth holds.

Each test runs a small mailing through ``Worker.drain()`` against ``tests.fakes.gateway`` (or
``tests.fakes.smsaero``) started as a separate process on 127.0.0.1, with a one-second HTTP
timeout, and checks what a user would: the gateway received each phone at most once (unless
the operator vouched that it de-duplicates), each report's status and error say what happened,
and no report is left ``pending`` or ``sending``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sms_sender.config import Settings
from sms_sender.dispatch import RetryPolicy
from sms_sender.mailings.models import Mailing
from sms_sender.providers import (
    GatewaySessions,
    HttpProvider,
    SmsAeroProvider,
    create_session,
    gateway_sessions,
)
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, ClientSpec, phones
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory
from tests.fakes.gateway import PROJECT_ROOT, STRAY_ID, Answer, GatewayProcess
from tests.fakes.http_server import start_listening_process
from tests.fakes.smsaero import AeroAnswer

pytestmark = pytest.mark.usefixtures("clean_db")

TOKEN = "hostile-token"
TIMEOUT = 1.0
CLIENTS = 4
RETRY = RetryPolicy(max_attempts=3, base=1.0, uniform=lambda low, high: high)
UNSENT = {ReportStatus.PENDING, ReportStatus.SENDING}


@pytest.fixture
async def sessions() -> AsyncIterator[GatewaySessions]:
    async with gateway_sessions(Settings(concurrency=10)) as running:
        yield running


async def deliver(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    provider: Any,
    *,
    rounds: int = RETRY.max_attempts,
) -> int:
    """A mailing to CLIENTS phones, drained ``rounds`` times a few minutes apart."""
    await arrange.clients([ClientSpec(phone) for phone in phones(CLIENTS)])
    mailing_id = await arrange.mailing(lasts=timedelta(days=1))
    worker = make_engine(provider, retry=RETRY).worker
    for _ in range(rounds):
        await worker.drain()
        clock.advance(minutes=5)  # past any backoff and Retry-After
    return mailing_id


def received_by_phone(gateway: GatewayProcess) -> dict[str, int]:
    stats = httpx.get(f"{gateway.url}/stats").json()
    return {phone: int(count) for phone, count in stats["by_phone"].items()}


@contextmanager
def probe_gateway(tmp_path: Path, answer: Answer) -> Iterator[GatewayProcess]:
    # SLOW answers after 2.5 s, past the 1 s timeout.
    with GatewayProcess(
        tmp_path / "accepted.txt", token=TOKEN, slow_seconds=2.5, default_answer=answer
    ) as gateway:
        yield gateway


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer.SLOW, "timeout: no answer within 1s"),
        (Answer.RESET, "connection error after the request was written"),
        (Answer.HANG_UP, "the gateway closed the connection without an answer"),
        (Answer.SERVER_ERROR, "HTTP 500: <html><body>Internal Server Error"),
        (Answer.BAD_GATEWAY, "HTTP 502: <html><body>502 Bad Gateway"),
        (Answer.GATEWAY_TIMEOUT, "HTTP 504: <html><body>504 Gateway Time-out"),
        (Answer.GARBAGE, "unparseable answer: <html><body>Welcome to nginx!"),
        (Answer.NO_CODE, 'unparseable answer: {"status": "queued"}'),
        (Answer.LONG_ID, "the gateway returned an id of 300 characters"),
        (Answer.HUGE, "answer larger than 64 KiB"),
    ],
)
async def test_no_clear_answer_is_unknown_and_never_sent_twice(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessions: GatewaySessions,
    tmp_path: Path,
    answer: Answer,
    reason: str,
) -> None:
    with probe_gateway(tmp_path, answer) as gateway:
        provider = HttpProvider(sessions.sends, url=gateway.url, token=TOKEN, timeout=TIMEOUT)
        mailing_id = await deliver(arrange, make_engine, clock, provider)
        received = received_by_phone(gateway)

    assert received == dict.fromkeys(phones(CLIENTS), 1)
    reports = await arrange.reports(mailing_id)
    assert {report.status for report in reports} == {ReportStatus.UNKNOWN}
    assert all(reason in (report.error or "") for report in reports), reports[0].error
    assert all(report.attempts == 1 for report in reports)


async def test_the_operator_vouching_for_deduplication_makes_unknown_retryable(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessions: GatewaySessions,
    tmp_path: Path,
) -> None:
    with probe_gateway(tmp_path, Answer.SERVER_ERROR) as gateway:
        provider = HttpProvider(
            sessions.sends, url=gateway.url, token=TOKEN, timeout=TIMEOUT, idempotent=True
        )
        mailing_id = await deliver(arrange, make_engine, clock, provider)
        received = received_by_phone(gateway)

    # The report id is in the path: asking again is safe, and is done up to max_attempts.
    assert received == dict.fromkeys(phones(CLIENTS), RETRY.max_attempts)
    reports = await arrange.reports(mailing_id)
    assert {report.status for report in reports} == {ReportStatus.FAILED}
    assert all("HTTP 500" in (report.error or "") for report in reports)


async def test_a_stray_answer_is_never_taken_for_another_message(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessions: GatewaySessions,
    tmp_path: Path,
) -> None:
    with probe_gateway(tmp_path, Answer.STRAY) as gateway:
        # One connection, so every message after the first goes where a stray answer waited.
        single = create_session(max_connections=1)
        provider = HttpProvider(single, url=gateway.url, token=TOKEN, timeout=TIMEOUT)
        try:
            mailing_id = await deliver(arrange, make_engine, clock, provider)
        finally:
            await single.close()
        received = received_by_phone(gateway)
        accepted = sorted(gateway.accepted_ids())

    assert received == dict.fromkeys(phones(CLIENTS), 1)
    reports = await arrange.reports(mailing_id)
    assert {report.status for report in reports} == {ReportStatus.SENT}
    assert STRAY_ID not in {report.provider_message_id for report in reports}
    assert sorted(int(report.provider_message_id or 0) for report in reports) == accepted


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer.TOO_MANY_REQUESTS, "HTTP 429: slow down"),
        (Answer.UNAVAILABLE, "HTTP 503: <html><body>Service Unavailable"),
    ],
)
async def test_not_now_is_retried_after_the_gateways_retry_after_then_fails(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessions: GatewaySessions,
    tmp_path: Path,
    answer: Answer,
    reason: str,
) -> None:
    with probe_gateway(tmp_path, answer) as gateway:
        provider = HttpProvider(sessions.sends, url=gateway.url, token=TOKEN, timeout=TIMEOUT)
        mailing_id = await deliver(arrange, make_engine, clock, provider)
        received = received_by_phone(gateway)
        accepted = gateway.accepted_ids()

    # The gateway said it did not take them: asking again is right, up to max_attempts.
    assert accepted == []
    assert received == dict.fromkeys(phones(CLIENTS), RETRY.max_attempts)
    reports = await arrange.reports(mailing_id)
    assert {report.status for report in reports} == {ReportStatus.FAILED}
    assert all(reason in (report.error or "") for report in reports)


async def test_a_refusal_fails_with_the_gateways_reason(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessions: GatewaySessions,
    tmp_path: Path,
) -> None:
    with probe_gateway(tmp_path, Answer.REJECT) as gateway:
        provider = HttpProvider(sessions.sends, url=gateway.url, token=TOKEN, timeout=TIMEOUT)
        mailing_id = await deliver(arrange, make_engine, clock, provider)
        received = received_by_phone(gateway)

    assert received == dict.fromkeys(phones(CLIENTS), 1)
    reports = await arrange.reports(mailing_id)
    assert {report.status for report in reports} == {ReportStatus.FAILED}
    assert {report.error for report in reports} == {
        "rejected with code 3: phone is on the stop list"
    }


@contextmanager
def smsaero_process(answer: AeroAnswer) -> Iterator[str]:
    """``python -m tests.fakes.smsaero`` answering every send with ``answer``; yields its URL."""
    process, url = start_listening_process(
        "tests.fakes.smsaero",
        ["--port", "0", "--email", "o@example.com", "--api-key", "k", "--answer", answer.value],
        PROJECT_ROOT,
    )
    try:
        yield f"{url}/v2"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def aero_sends(url: str) -> dict[str, int]:
    stats = httpx.get(f"{url}/stats", auth=("o@example.com", "k")).json()
    return {number: int(count) for number, count in stats["sends_by_number"].items()}


def aero_provider(sessions: GatewaySessions, url: str) -> SmsAeroProvider:
    return SmsAeroProvider(
        sessions, email="o@example.com", api_key="k", sign="Shop", urls=[url], timeout=TIMEOUT
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (AeroAnswer.NO_MONEY, "HTTP 402: Insufficient funds."),
        (AeroAnswer.LEGACY_NO_CREDITS, "no credits on the SMS Aero account"),
    ],
)
async def test_smsaero_out_of_money_pauses_the_mailing_with_the_reason(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessions: GatewaySessions,
    answer: AeroAnswer,
    reason: str,
) -> None:
    with smsaero_process(answer) as url:
        mailing_id = await deliver(arrange, make_engine, clock, aero_provider(sessions, url))
        sends = aero_sends(url)

    assert set(sends.values()) == {1}  # none asked twice; none asked once paused
    assert await arrange.mailing_status(mailing_id) == "paused"
    async with arrange.sessionmaker() as session:
        mailing = await session.get(Mailing, mailing_id)
        assert mailing is not None
        assert reason in (mailing.paused_reason or "")
    # Nothing was refused for good: every report waits for the resume after a top-up.
    statuses = await arrange.statuses(mailing_id)
    assert set(statuses) <= {ReportStatus.PENDING}


async def test_smsaero_legacy_reject_fails_with_its_reason(
    arrange: Arrange,
    make_engine: EngineFactory,
    clock: FakeClock,
    sessions: GatewaySessions,
) -> None:
    with smsaero_process(AeroAnswer.LEGACY_REJECT) as url:
        mailing_id = await deliver(arrange, make_engine, clock, aero_provider(sessions, url))
        sends = aero_sends(url)

    assert sends == dict.fromkeys(phones(CLIENTS), 1)
    reports = await arrange.reports(mailing_id)
    assert {report.status for report in reports} == {ReportStatus.FAILED}
    assert {report.error for report in reports} == {"rejected: incorrect sender name"}
