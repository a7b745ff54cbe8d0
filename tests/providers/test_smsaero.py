"""The SMS Aero provider against the fake SMS Aero API on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections import Counter

import httpx
import pytest

from sms_sender.providers import DeliveryStatus, Outcome, SendResult, SmsAeroProvider
from tests.fakes.smsaero import AeroAnswer, FakeSmsAero
from tests.providers.conftest import AERO_EMAIL, AERO_KEY, MessageFactory


def make_provider(
    aero: FakeSmsAero,
    http_client: httpx.AsyncClient,
    *,
    api_key: str = AERO_KEY,
    timeout: float = 1.0,
) -> SmsAeroProvider:
    return SmsAeroProvider(
        http_client,
        email=AERO_EMAIL,
        api_key=api_key,
        sign="Shop",
        url=aero.url,
        timeout=timeout,
    )


@pytest.fixture
def provider(aero: FakeSmsAero, http_client: httpx.AsyncClient) -> SmsAeroProvider:
    return make_provider(aero, http_client)


async def test_send_posts_number_text_and_sign_with_basic_auth(
    provider: SmsAeroProvider, aero: FakeSmsAero, make_message: MessageFactory
) -> None:
    (result,) = await provider.send([make_message(phone="79001234567", text="Скидка 10%")])

    (message_id,) = aero.messages
    assert result == SendResult.accepted(str(message_id))
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
    aero.script("79000000002", AeroAnswer.NO_MONEY)

    results = await provider.send([make_message(phone=f"7900000000{n}") for n in (1, 2, 3)])

    assert [result.outcome for result in results] == [
        Outcome.ACCEPTED,
        Outcome.PERMANENT,
        Outcome.ACCEPTED,
    ]
    assert sorted(aero.accepted_numbers()) == ["79000000001", "79000000003"]


@pytest.mark.parametrize(
    ("answer", "outcome", "error"),
    [
        (AeroAnswer.NO_MONEY, Outcome.PERMANENT, "Insufficient funds."),
        (
            AeroAnswer.VALIDATION,
            Outcome.PERMANENT,
            "HTTP 400: Validation error. (text: Text is too long.)",
        ),
        (AeroAnswer.RATE_LIMIT, Outcome.TRANSIENT, "HTTP 429: Too many requests."),
        (
            AeroAnswer.SERVER_ERROR,
            Outcome.TRANSIENT,
            "HTTP 500: <html><body>Internal Server Error</body></html>",
        ),
        (
            AeroAnswer.GARBAGE,
            Outcome.TRANSIENT,
            "unparseable answer: <html><body>maintenance</body></html>",
        ),
    ],
)
async def test_error_answers_are_classified(
    provider: SmsAeroProvider,
    aero: FakeSmsAero,
    make_message: MessageFactory,
    answer: AeroAnswer,
    outcome: Outcome,
    error: str,
) -> None:
    aero.script("79001234567", answer)

    (result,) = await provider.send([make_message()])

    assert result == SendResult(outcome, error=error)
    assert aero.messages == {}


async def test_invalid_number_is_a_permanent_validation_failure(
    provider: SmsAeroProvider, make_message: MessageFactory
) -> None:
    (result,) = await provider.send([make_message(phone="12")])

    assert result == SendResult.permanent(
        "HTTP 400: Validation error. (number: Invalid phone number.)"
    )


async def test_bad_credentials_are_a_permanent_failure(
    aero: FakeSmsAero, http_client: httpx.AsyncClient, make_message: MessageFactory
) -> None:
    provider = make_provider(aero, http_client, api_key="wrong")

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


async def test_slow_answer_times_out_as_transient(
    aero: FakeSmsAero, http_client: httpx.AsyncClient, make_message: MessageFactory
) -> None:
    aero.script("79001234567", AeroAnswer.SLOW)
    provider = make_provider(aero, http_client, timeout=0.2)

    (result,) = await provider.send([make_message()])

    assert result == SendResult.transient("timeout: no answer within 0.2s")


async def test_unreachable_api_is_a_transient_connection_error(
    http_client: httpx.AsyncClient, make_message: MessageFactory
) -> None:
    stopped = FakeSmsAero()
    async with stopped:
        url = stopped.url
    provider = SmsAeroProvider(
        http_client, email=AERO_EMAIL, api_key=AERO_KEY, sign="Shop", url=url, timeout=1.0
    )

    (result,) = await provider.send([make_message()])

    assert result.outcome is Outcome.TRANSIENT
    assert result.error is not None
    assert result.error.startswith("connection error: ConnectError")


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
