"""Nothing a client or a text sends can drive a terminal or forge a log line.

Every control character (C0, DEL, C1) is escaped in console log lines, in JSON log lines and in
the console provider's output; printable Unicode (Russian, say) is kept as it is.
"""

from __future__ import annotations

import io
import re

import httpx
import pytest

from sms_sender.config import LogFormat
from sms_sender.logging import escape_controls
from sms_sender.providers import ConsoleProvider
from tests.providers.conftest import MessageFactory
from tests.security.conftest import LogCapture

# Any control character except the line feed that ends each line.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        ("/zz%1b[31m", {LogFormat.CONSOLE: r"/zz\x1b[31m", LogFormat.JSON: r"/zz\u001b[31m"}),
        ("/zz%c2%9b31m", {LogFormat.CONSOLE: r"/zz\x9b31m", LogFormat.JSON: r"/zz\u009b31m"}),
        ("/a%0d%0aforged", {LogFormat.CONSOLE: r"/a\r\nforged", LogFormat.JSON: r"/a\r\nforged"}),
        ("/zz%7f", {LogFormat.CONSOLE: r"/zz\x7f", LogFormat.JSON: r"/zz\u007f"}),
    ],
)
async def test_a_path_with_control_characters_is_logged_escaped(
    anon_client: httpx.AsyncClient,
    capture_logs: LogCapture,
    log_format: LogFormat,
    path: str,
    escaped: dict[LogFormat, str],
) -> None:
    logs = capture_logs(log_format)

    response = await anon_client.get(path)

    assert response.status_code == 404
    logged = logs.getvalue()
    assert RAW_CONTROL.search(logged) is None, repr(logged)
    assert escaped[log_format] in logged
    assert len(logged.splitlines()) == 1  # the request line, not a forged second one


async def test_printable_unicode_is_logged_as_it_is(
    anon_client: httpx.AsyncClient, capture_logs: LogCapture, log_format: LogFormat
) -> None:
    logs = capture_logs(log_format)

    await anon_client.get("/рассылка")

    assert "/рассылка" in logs.getvalue()


async def test_console_provider_escapes_every_control_character(
    make_message: MessageFactory,
) -> None:
    stream = io.StringIO()
    text = "Скидка\x1b[2J\x07 -50%\x7f\x9b6n\tend\r\n"

    await ConsoleProvider(stream).send([make_message(text=text)])

    assert stream.getvalue() == (
        "SMS to 79001234567 [mailing 3, report 1]: "
        "Скидка\\x1b[2J\\x07 -50%\\x7f\\x9b6n\\tend\\r\\n\n"
    )


def test_escape_controls_keeps_printable_text_untouched() -> None:
    text = "Привет, мир! «ёлка» 日本 €"
    assert escape_controls(text) is text
    assert escape_controls("\x00\x1f\x7f\x80\x9f") == "\\x00\\x1f\\x7f\\x80\\x9f"


@pytest.mark.parametrize(
    "header", [b"\xff\xfe not utf-8", b"id\x1b[31m", b"two words", b"\xd0\xb8\xd0\xb4"]
)
async def test_an_unusable_request_id_is_replaced_not_a_500(
    anon_client: httpx.AsyncClient, capture_logs: LogCapture, header: bytes
) -> None:
    logs = capture_logs(LogFormat.JSON)

    response = await anon_client.get("/healthz", headers={"X-Request-ID": header})

    assert response.status_code == 200
    replaced = response.headers["x-request-id"]
    assert re.fullmatch("[0-9a-f]{32}", replaced)
    assert f'"request_id":"{replaced}"' in logs.getvalue()


async def test_a_usable_request_id_is_kept(anon_client: httpx.AsyncClient) -> None:
    response = await anon_client.get("/healthz", headers={"X-Request-ID": "abc-123:x"})
    assert response.headers["x-request-id"] == "abc-123:x"
