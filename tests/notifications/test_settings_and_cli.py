"""Bad mail settings stop start-up with a sentence naming the variable; ``report show|send``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner, Result

from sms_sender.cli import app
from sms_sender.config import Settings
from sms_sender.db import Notifier, create_sessionmaker
from sms_sender.dispatch import DeliveryEngine
from sms_sender.providers.fake import FakeProvider
from tests.arrange import Arrange
from tests.conftest import FakeClock
from tests.notifications.conftest import Inbox, text_part
from tests.notifications.test_daily_report import at

MAIL = {
    "SMS_SENDER_SMTP_URL": "smtp://sender:s3cret-pw@127.0.0.1:2525",
    "SMS_SENDER_REPORT_FROM": "sms-sender@example.com",
    "SMS_SENDER_REPORT_TO": "ops@example.com",
}


def invoke(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> Result:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        (
            {"SMS_SENDER_SMTP_URL": "smtp://sender:s3cret-pw@:25"},
            "SMS_SENDER_SMTP_URL names no host",
        ),
        (
            {"SMS_SENDER_SMTP_URL": "http://sender:s3cret-pw@mail.example.com"},
            "SMS_SENDER_SMTP_URL must start with smtp:// (STARTTLS) or smtps://",
        ),
        (
            {"SMS_SENDER_SMTP_URL": "smtp://sender:s3cret-pw@mail.example.com:99999"},
            "SMS_SENDER_SMTP_URL has a port that is not a number",
        ),
        (
            {"SMS_SENDER_REPORT_TO": "ops@example.com, not an address"},
            "SMS_SENDER_REPORT_TO 'not an address' is not an e-mail address",
        ),
        ({"SMS_SENDER_ALERT_TO": "ops"}, "SMS_SENDER_ALERT_TO 'ops' is not an e-mail address"),
        ({"SMS_SENDER_REPORT_FROM": "sms-sender"}, "SMS_SENDER_REPORT_FROM 'sms-sender' is not"),
        ({"SMS_SENDER_REPORT_TIME": "8am"}, "SMS_SENDER_REPORT_TIME '8am' is not a time of day"),
        ({"SMS_SENDER_REPORT_TIME": "24:00"}, "SMS_SENDER_REPORT_TIME '24:00' is not a time"),
        (
            {"SMS_SENDER_REPORT_TIMEZONE": "Mars/Olympus"},
            "SMS_SENDER_REPORT_TIMEZONE 'Mars/Olympus' is not an IANA time zone",
        ),
        (
            {"SMS_SENDER_ALERT_WEBHOOK_URL": "hooks.example.com/x"},
            "SMS_SENDER_ALERT_WEBHOOK_URL 'hooks.example.com/x' is not an http:// or https:// URL",
        ),
        ({"SMS_SENDER_PUBLIC_URL": "ftp://x"}, "SMS_SENDER_PUBLIC_URL 'ftp://x' is not an http"),
        (
            {"SMS_SENDER_SMTP_URL": ""},
            "SMS_SENDER_REPORT_TO is set but SMS_SENDER_SMTP_URL is not",
        ),
        (
            {"SMS_SENDER_REPORT_FROM": ""},
            "SMS_SENDER_REPORT_TO is set but SMS_SENDER_REPORT_FROM is not",
        ),
    ],
)
def test_bad_mail_settings_stop_start_up_with_a_sentence_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], sentence: str, tmp_path: Path
) -> None:
    # Every command reads the settings the same way first; this one would not block if it ran.
    database = {"SMS_SENDER_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}"}
    result = invoke(monkeypatch, database | MAIL | env, "report", "show")

    assert result.exit_code == 2
    assert sentence in result.output
    assert "s3cret-pw" not in result.output


def test_addresses_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_SENDER_ALERT_TO", "ops@example.com, Duty <duty@example.com>")
    settings = Settings(
        **{"smtp_url": "smtps://a:b%40c@mail.example.com", "report_from": "x@y.org"}
    )

    assert settings.alert_to == ["ops@example.com", "Duty <duty@example.com>"]
    server = settings.smtp_server
    assert (server.host, server.port, server.implicit_tls, server.username) == (
        "mail.example.com",
        465,
        True,
        "a",
    )
    assert server.password is not None
    assert server.password.get_secret_value() == "b@c"
    assert "b@c" not in repr(settings)


def test_without_recipients_the_engine_runs_no_notifications_loop() -> None:
    assert _engine(Settings(provider="fake")).notifications is None
    with_webhook = Settings(provider="fake", alert_webhook_url="http://127.0.0.1:9/hooks")
    assert _engine(with_webhook).notifications is not None


def _engine(settings: Settings) -> DeliveryEngine:
    database = create_async_engine("sqlite+aiosqlite://")
    return DeliveryEngine(
        settings=settings,
        sessionmaker=create_sessionmaker(database),
        notifier=Notifier(),
        clock=FakeClock(),
        provider=FakeProvider(),
    )


@pytest.mark.usefixtures("clean_db")
async def test_report_show_prints_the_day_and_report_send_mails_it(
    arrange: Arrange, inbox: Inbox, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailing = await arrange.stored_mailing(
        status="running", started_at=at(14, 10), reports={"sent": 3}
    )
    env = {
        "SMS_SENDER_DATABASE_URL": database_url,
        "SMS_SENDER_LOG_LEVEL": "WARNING",
        "SMS_SENDER_SMTP_URL": f"smtp://127.0.0.1:{inbox.port}",
        "SMS_SENDER_REPORT_FROM": "sms-sender@example.com",
        "SMS_SENDER_REPORT_TO": "ops@example.com",
    }

    shown = await asyncio.to_thread(
        invoke, monkeypatch, env, "report", "show", "--date", "2030-01-14"
    )
    sent = await asyncio.to_thread(
        invoke, monkeypatch, env, "report", "send", "--date", "2030-01-14"
    )
    other_day = await asyncio.to_thread(
        invoke, monkeypatch, env, "report", "show", "--date", "2030-01-12"
    )
    bad = await asyncio.to_thread(
        invoke, monkeypatch, env, "report", "show", "--date", "14.01.2030"
    )

    assert shown.exit_code == 0, shown.output
    assert "sms-sender daily report for 2030-01-14 (UTC)" in shown.output
    assert f"Mailing {mailing} (running)" in shown.output
    assert "total 3: delivered 0 (0.0%)" in shown.output
    assert sent.exit_code == 0, sent.output
    assert "sent the report of 2030-01-14 to ops@example.com" in sent.output
    [message] = inbox.messages
    assert text_part(message) == shown.output.replace("\r\n", "\n")
    assert "No mailing was active on this day." in other_day.output
    assert bad.exit_code == 2
    assert "--date '14.01.2030' is not a day as YYYY-MM-DD" in bad.output


@pytest.mark.usefixtures("clean_db")
async def test_report_send_says_why_when_the_mail_server_refuses(
    inbox: Inbox, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox.refuse = True
    env = {
        "SMS_SENDER_DATABASE_URL": database_url,
        "SMS_SENDER_SMTP_URL": f"smtp://127.0.0.1:{inbox.port}",
        "SMS_SENDER_REPORT_FROM": "sms-sender@example.com",
        "SMS_SENDER_REPORT_TO": "ops@example.com",
    }

    result = await asyncio.to_thread(invoke, monkeypatch, env, "report", "send")

    assert result.exit_code == 1
    assert "the report was not sent" in result.output
    assert "mailbox busy" in result.output
