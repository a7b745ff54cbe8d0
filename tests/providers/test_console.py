"""The console provider prints one line per message and accepts it."""

from __future__ import annotations

import io

import pytest

from sms_sender.providers import ConsoleProvider, SendResult
from tests.providers.conftest import MessageFactory


async def test_prints_phone_mailing_report_and_text(
    capsys: pytest.CaptureFixture[str], make_message: MessageFactory
) -> None:
    provider = ConsoleProvider()

    results = await provider.send(
        [make_message(phone="79001234567", text="Hello"), make_message(phone="79007654321")]
    )

    assert results == [SendResult.accepted(), SendResult.accepted()]
    assert capsys.readouterr().out.splitlines() == [
        "SMS to 79001234567 [mailing 3, report 1]: Hello",
        "SMS to 79007654321 [mailing 3, report 2]: Hello",
    ]


async def test_text_with_line_breaks_stays_on_one_line(make_message: MessageFactory) -> None:
    stream = io.StringIO()

    await ConsoleProvider(stream).send([make_message(text="Sale!\nToday only\r\n-50%")])

    assert stream.getvalue() == (
        "SMS to 79001234567 [mailing 3, report 1]: Sale!\\nToday only\\r\\n-50%\n"
    )


def test_is_idempotent_because_a_repeat_harms_no_one() -> None:
    assert ConsoleProvider.idempotent is True
