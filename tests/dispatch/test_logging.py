"""With JSON logs, every line about a send carries the ids it is about (docs/logging.md)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from sms_sender.config import LogFormat
from sms_sender.logging import configure_logging
from sms_sender.providers.fake import FakeProvider
from tests.arrange import Arrange, ClientSpec
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
def json_log_lines() -> Iterator[io.StringIO]:
    """Logs go to a buffer as JSON, as with SMS_SENDER_LOG_FORMAT=json."""
    structlog.reset_defaults()
    buffer = io.StringIO()
    configure_logging(LogFormat.JSON, "INFO", stream=buffer)
    yield buffer
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


async def test_one_send_is_traceable_by_mailing_report_and_client(
    arrange: Arrange, make_engine: EngineFactory, json_log_lines: io.StringIO
) -> None:
    [client_id] = await arrange.clients([ClientSpec("79160000001")])
    mailing_id = await arrange.mailing(text="Hello, logs")
    [report] = await arrange.reports(mailing_id)

    async def sent() -> bool:
        return (await arrange.statuses(mailing_id))["sent"] == 1

    async with make_engine(FakeProvider()).running():
        await eventually(sent, what="the message sent")

    lines = _lines(json_log_lines)
    about_the_message = [line for line in lines if line.get("report_id") == report.id]
    exchange = [line for line in about_the_message if line["event"] == "provider exchange"]
    assert len(exchange) == 1, lines
    # SMS_SENDER_LOG_MESSAGES=masked, the default (tests/security/test_personal_data.py).
    assert exchange[0]["request"] == {"phone": "7916***0001", "text_length": 11, "segments": 1}
    assert exchange[0]["response"]["outcome"] == "accepted"
    for line in about_the_message:
        assert (line["mailing_id"], line["client_id"]) == (mailing_id, client_id), line
        assert line["worker_id"]
    settled = [line for line in lines if line["event"] == "messages settled"]
    assert settled
    assert report.id in settled[0]["report_ids"]
    assert settled[0]["mailing_id"] == mailing_id
