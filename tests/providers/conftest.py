"""Fixtures for provider tests: fake gateways on 127.0.0.1 and outgoing messages. No database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from sms_sender.providers import GatewaySessions, OutgoingMessage, create_session
from tests.fakes.gateway import ProbeGateway
from tests.fakes.smsaero import FakeSmsAero

TOKEN = "probe-token"
AERO_EMAIL = "owner@example.com"
AERO_KEY = "aero-api-key"

MessageFactory = Callable[..., OutgoingMessage]


@pytest.fixture
def make_message() -> MessageFactory:
    """Builds an OutgoingMessage; report ids count up unless given."""
    counter = iter(range(1, 1_000_000))

    def make(
        phone: str = "79001234567", text: str = "Hello", report_id: int | None = None
    ) -> OutgoingMessage:
        return OutgoingMessage(
            report_id=report_id if report_id is not None else next(counter),
            mailing_id=3,
            client_id=11,
            phone=phone,
            text=text,
            valid_for=timedelta(hours=1),
        )

    return make


@pytest.fixture
async def gateway() -> AsyncIterator[ProbeGateway]:
    async with ProbeGateway(token=TOKEN, slow_seconds=2.0) as running:
        yield running


@pytest.fixture
async def aero() -> AsyncIterator[FakeSmsAero]:
    async with FakeSmsAero(email=AERO_EMAIL, api_key=AERO_KEY, slow_seconds=2.0) as running:
        yield running


@pytest.fixture
async def sessions() -> AsyncIterator[GatewaySessions]:
    """Gateway sessions as the engine builds them: ten send connections, two for status."""
    running = GatewaySessions(
        sends=create_session(max_connections=10), status=create_session(max_connections=2)
    )
    yield running
    await running.aclose()
