"""The SMS Aero provider against the fake SMS Aero API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter

import httpx
import pytest

from sms_sender.providers import (
    DeliveryStatus,
    GatewaySessions,
    Outcome,
    SendResult,
    SmsAeroProvider,
    TrackingThrottled,
)
from tests.fakes.smsaero import AeroAnswer, FakeSmsAero
from tests.providers.conftest import AERO_EMAIL, AERO_KEY, MessageFactory


def make_provider(
    urls: list[str],
    sessions: GatewaySessions,
    *,
    api_key: str = AERO_KEY,
    timeout: float = 1.0,
    status_rate: float = 1000.0,
) -> SmsAeroProvider:
    return SmsAeroProvider(
        sessions,
        email=AERO_EMAIL,
        api_key=api_key,
        sign="Shop",
        urls=urls,
        timeout=timeout,
        status_rate=status_rate,
    )


@pytest.fixture
def provider(aero: FakeSmsAero, sessions: GatewaySessions) -> SmsAeroProvider:
    return make_provider([aero.url], sessions)


async def closed_url() -> str:
    stopped = FakeSmsAero()
    async with stopped:
        return stopped.url  # a port that was just free and is closed again on return


async def test_send_posts_number_text_and_sign_with_basic_auth(
    provider: SmsAeroProvider, aero: FakeSmsAero, make_message: MessageFactory
) -> None:
    (result,) = await provider.send([make_message(phone="79001234567", text="Скидка 10%")])

    (message_id,) = aero.messages
    assert result == SendResult.accepted(str(message_id))
    assert aero.messages[message_id].status == 0  # queued, as SMS Aero answers at creation
    (request,) = aero.requests
    assert (request.method, request.path) == ("POST", "/v2/sms/send")
    credentials = base64.b64encode(f"{AERO_EMAIL}:{AERO_KEY}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"
    assert json.loads(request.body) == {
        "number": "79001234567",
        "text": "Скидка 10%",
        "sign": "Shop",
    }


async def test_batch_gets_one_result_per_message_in_order(
    provider: SmsAeroProvider, aero: FakeSmsAero, make_message: MessageFactory
) -> None:
    aero.script("79000000002", AeroAnswer.REFUSED)

    results = await provider.send([make_message(phone=f"7900000000{n}") for n in (1, 2, 3)])

    assert [result.outcome for result in results] == [
        Outcome.ACCEPTED,
        Outcome.PERMANENT,
        Outcome.ACCEPTED,
    ]
    assert sorted(aero.accepted_numbers()) == ["79000000001", "79000000003"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (AeroAnswer.NO_MONEY, SendResult.no_funds("HTTP 402: Insufficient funds.")),
        (AeroAnswer.NO_MONEY_ENVELOPE, SendResult.no_funds("Insufficient funds.")),
        (
            AeroAnswer.LEGACY_NO_CREDITS,
            SendResult.no_funds("no credits on the SMS Aero account"),
        ),
        (AeroAnswer.LEGACY_REJECT, SendResult.permanent("rejected: incorrect sender name")),
        (AeroAnswer.REFUSED, SendResult.permanent("Sign is not approved.")),
        (
            AeroAnswer.VALIDATION,
            SendResult.permanent("HTTP 400: Validation error. (text: Text is too long.)"),
        ),
        (
            AeroAnswer.RATE_LIMIT,
            SendResult.transient("HTTP 429: Too many requests.", retry_after=1.0),
        ),
        (
            AeroAnswer.SERVER_ERROR,
            SendResult.unknown("HTTP 500: <html><body>Internal Server Error</body></html>"),
        ),
        (
            AeroAnswer.GARBAGE,
            SendResult.unknown("unparseable answer: <html><body>maintenance</body></html>"),
        ),
    ],
)
async def test_answers_are_classified(
    provider: SmsAeroProvider,
    aero: FakeSmsAero,
    make_message: MessageFactory,
    answer: AeroAnswer,
    expected: SendResult,
) -> None:
    aero.script("79001234567", answer)

    (result,) = await provider.send([make_message()])

    assert result == expected
    assert aero.messages == {}


async def test_an_id_too_long_to_keep_is_an_unknown_outcome(
    provider: SmsAeroProvider, aero: FakeSmsAero, make_message: MessageFactory
) -> None:
    aero.script("79001234567", AeroAnswer.LONG_ID)

    (result,) = await provider.send([make_message()])

    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None
    assert result.error.startswith("the gateway returned an id of 300 characters")


async def test_invalid_number_is_a_permanent_validation_failure(
    provider: SmsAeroProvider, make_message: MessageFactory
) -> None:
    (result,) = await provider.send([make_message(phone="12")])

    assert result == SendResult.permanent(
        "HTTP 400: Validation error. (number: Invalid phone number.)"
    )


async def test_the_fake_refuses_texts_outside_the_official_limits(
    provider: SmsAeroProvider, make_message: MessageFactory
) -> None:
    short, long = await provider.send([make_message(text="a"), make_message(text="a" * 641)])

    assert short == long
    assert short.outcome is Outcome.PERMANENT
    assert provider.text_limits.problem("a") is not None
    assert provider.text_limits.problem("a" * 641) is not None
    assert provider.text_limits.problem("ab") is None


async def test_bad_credentials_are_a_permanent_failure(
    aero: FakeSmsAero, sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    provider = make_provider([aero.url], sessions, api_key="wrong")

    (result,) = await provider.send([make_message()])

    assert result == SendResult.permanent(
        "HTTP 401: Your request was made with invalid credentials."
    )


async def test_success_without_an_id_is_accepted_without_one(
    provider: SmsAeroProvider, aero: FakeSmsAero, make_message: MessageFactory
) -> None:
    aero.script("79001234567", AeroAnswer.NO_ID)

    (result,) = await provider.send([make_message()])

    assert result == SendResult.accepted(None)


async def test_slow_answer_is_unknown_and_never_fails_over(
    aero: FakeSmsAero, sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    async with FakeSmsAero(email=AERO_EMAIL, api_key=AERO_KEY) as fallback:
        aero.script("79001234567", AeroAnswer.SLOW)
        provider = make_provider([aero.url, fallback.url], sessions, timeout=0.2)

        (result,) = await provider.send([make_message()])

        assert result == SendResult.unknown("timeout: no answer within 0.2s")
        assert fallback.requests == []  # the first gateway may have it: never ask another


async def test_unreachable_gateway_fails_over_to_the_next_and_stays_there(
    aero: FakeSmsAero, sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    provider = make_provider([await closed_url(), aero.url], sessions)

    first, second = [(await provider.send([make_message()]))[0] for _ in range(2)]

    assert first.outcome is second.outcome is Outcome.ACCEPTED
    assert len(aero.messages) == 2


async def test_no_gateway_reachable_is_transient_with_every_reason(
    sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    provider = make_provider([await closed_url(), await closed_url()], sessions)

    (result,) = await provider.send([make_message()])

    assert result.outcome is Outcome.TRANSIENT
    assert result.error is not None
    assert result.error.count("connection error: cannot connect to 127.0.0.1:") == 2


async def test_delivery_status_maps_smsaero_codes(
    provider: SmsAeroProvider, aero: FakeSmsAero, make_message: MessageFactory
) -> None:
    results = await provider.send([make_message(phone=f"7900000000{n}") for n in range(7)])
    ids = [str(result.provider_message_id) for result in results]
    codes = [1, 2, 6, 0, 3, 4, 8]  # delivered, not delivered, rejected, then four in transit
    for message_id, code in zip(ids, codes, strict=True):
        aero.set_status(message_id, code)

    statuses = await provider.delivery_status(ids)

    assert [statuses[message_id] for message_id in ids] == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.UNKNOWN,
        DeliveryStatus.UNKNOWN,
        DeliveryStatus.UNKNOWN,
        DeliveryStatus.UNKNOWN,
    ]
    # One sms/status request per id, carrying the id as SMS Aero's number.
    assert Counter(aero.status_requests) == Counter(int(message_id) for message_id in ids)


async def test_delivery_status_leaves_out_ids_it_cannot_report_on(
    provider: SmsAeroProvider, aero: FakeSmsAero, make_message: MessageFactory
) -> None:
    (sent,) = await provider.send([make_message()])
    assert sent.provider_message_id is not None
    aero.set_status(sent.provider_message_id, 1)

    statuses = await provider.delivery_status([sent.provider_message_id, "404", "not-a-number"])

    assert statuses == {sent.provider_message_id: DeliveryStatus.DELIVERED}


async def test_a_429_on_status_is_raised_with_its_retry_after(
    provider: SmsAeroProvider, aero: FakeSmsAero, make_message: MessageFactory
) -> None:
    (sent,) = await provider.send([make_message()])
    assert sent.provider_message_id is not None
    aero.throttle_status(1)

    with pytest.raises(TrackingThrottled) as throttled:
        await provider.delivery_status([sent.provider_message_id])

    assert throttled.value.retry_after == 2.0


async def test_status_questions_are_paced_and_use_their_own_connections(
    aero: FakeSmsAero, sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    provider = make_provider([aero.url], sessions, status_rate=20.0)
    results = await provider.send([make_message(phone=f"7900000000{n}") for n in range(6)])
    ids = [str(result.provider_message_id) for result in results]
    sends_before = aero.server.connections_opened

    started = asyncio.get_running_loop().time()
    await provider.delivery_status(ids)
    elapsed = asyncio.get_running_loop().time() - started

    assert elapsed >= 0.24  # six questions 50 ms apart
    # Status questions never open more connections than the status pool holds (two here).
    assert aero.server.connections_opened - sends_before <= 2


async def test_the_fake_takes_a_list_of_numbers_as_smsaero_does(aero: FakeSmsAero) -> None:
    """What the fake answers is what the provider's tests rely on; ``numbers`` included."""
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{aero.url}/sms/send",
            auth=(AERO_EMAIL, AERO_KEY),
            json={"numbers": ["79000000001", "79000000002"], "text": "Hi", "sign": "Shop"},
        )

    envelope = answer.json()
    assert envelope["success"] is True
    assert [sms["number"] for sms in envelope["data"]] == ["79000000001", "79000000002"]
    assert {sms["status"] for sms in envelope["data"]} == {0}  # queued at creation
    assert sorted(aero.accepted_numbers()) == ["79000000001", "79000000002"]
