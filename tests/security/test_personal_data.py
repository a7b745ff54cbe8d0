"""SMS_SENDER_LOG_MESSAGES decides what logs show of a phone and a text: masked by default."""

from __future__ import annotations

import io
import json

import pytest

from sms_sender.config import LogFormat, LogMessages, Settings
from sms_sender.logging import mask_phone, message_fields
from sms_sender.providers import build_provider, gateway_sessions
from sms_sender.providers.fake import FakeProvider
from tests.arrange import Arrange, ClientSpec
from tests.dispatch.conftest import EngineFactory, eventually
from tests.providers.conftest import MessageFactory
from tests.security.conftest import LogCapture

PHONE = "79161234567"
TEXT = "Ваш код 4821, никому не говорите"  # 32 characters, UCS-2: one segment
# Looked for with its word: the digits alone turn up in a timestamp's microseconds now and then.


async def _send_one(arrange: Arrange, make_engine: EngineFactory) -> None:
    await arrange.clients([ClientSpec(PHONE)])
    mailing_id = await arrange.mailing(text=TEXT)
    await arrange.reports(mailing_id)

    async def sent() -> bool:
        return (await arrange.statuses(mailing_id))["sent"] == 1

    async with make_engine(FakeProvider()).running():
        await eventually(sent, what="the message sent")


def _exchanges(logs: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    return [line for line in lines if line["event"] == "provider exchange"]


@pytest.mark.usefixtures("clean_db")
@pytest.mark.parametrize(
    ("mode", "request_shown"),
    [
        (LogMessages.MASKED, {"phone": "7916***4567", "text_length": 32, "segments": 1}),
        (LogMessages.FULL, {"phone": PHONE, "text": TEXT}),
        (LogMessages.OFF, {}),
    ],
)
async def test_each_mode_shows_what_it_promises_of_a_send(
    arrange: Arrange,
    make_engine: EngineFactory,
    capture_logs: LogCapture,
    mode: LogMessages,
    request_shown: dict[str, object],
) -> None:
    logs = capture_logs(LogFormat.JSON, messages=mode)

    await _send_one(arrange, make_engine)

    [exchange] = _exchanges(logs)
    assert exchange["request"] == request_shown
    if mode is not LogMessages.FULL:
        assert PHONE not in logs.getvalue()
        assert "код 4821" not in logs.getvalue()


@pytest.mark.usefixtures("clean_db")
async def test_the_default_console_log_has_neither_phone_nor_text(
    arrange: Arrange, make_engine: EngineFactory, capture_logs: LogCapture
) -> None:
    logs = capture_logs(LogFormat.CONSOLE)

    await _send_one(arrange, make_engine)

    logged = logs.getvalue()
    assert "provider exchange" in logged
    assert "7916***4567" in logged
    assert PHONE not in logged
    assert "код 4821" not in logged


def test_masked_is_the_default_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMS_SENDER_LOG_MESSAGES", raising=False)
    assert Settings().log_messages is LogMessages.MASKED
    assert message_fields(PHONE, "Hi") == {"phone": "7916***4567", "text_length": 2, "segments": 1}


def test_a_short_phone_is_masked_whole() -> None:
    assert mask_phone("12345") == "*****"


@pytest.mark.parametrize(
    ("mode", "line"),
    [
        (LogMessages.FULL, f"SMS to {PHONE} [mailing 3, report 1]: {TEXT}"),
        (LogMessages.MASKED, "SMS to 7916***4567 [mailing 3, report 1]: 32 characters, 1 segment"),
        (LogMessages.OFF, "SMS [mailing 3, report 1]"),
    ],
)
async def test_the_console_provider_prints_what_the_setting_allows(
    make_message: MessageFactory,
    capsys: pytest.CaptureFixture[str],
    mode: LogMessages,
    line: str,
) -> None:
    settings = Settings(provider="console", log_messages=mode)
    async with gateway_sessions(settings) as sessions:
        provider = build_provider(settings, sessions)
        await provider.send([make_message(phone=PHONE, text=TEXT)])

    assert capsys.readouterr().out.splitlines() == [line]
