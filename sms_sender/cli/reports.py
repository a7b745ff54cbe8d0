"""``sms-sender report show|send``: the daily statistics e-mail, by hand.

The templates and the mail client are imported when a command runs, not at the top: every
command's module is loaded to start any command, ``sms-sender worker`` included.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

import typer

from sms_sender.cli._common import run_event_loop, settings_from_env
from sms_sender.clock import SystemClock
from sms_sender.config import Settings
from sms_sender.db import create_engine
from sms_sender.dialects import read_only
from sms_sender.migrations import upgrade_to_head
from sms_sender.notifications import service as notifications_service
from sms_sender.notifications.schemas import DailyReport

report_app = typer.Typer(
    help="The daily statistics e-mail (sent by itself at SMS_SENDER_REPORT_TIME).",
    no_args_is_help=True,
)


ReportDate = Annotated[
    str | None,
    typer.Option(
        "--date",
        help="The day, YYYY-MM-DD, in SMS_SENDER_REPORT_TIMEZONE (default: yesterday there).",
    ),
]


def _daily_report(settings: Settings, day_text: str | None) -> DailyReport:
    now = SystemClock().now()
    if day_text is None:
        day = now.astimezone(settings.report_zone).date() - timedelta(days=1)
    else:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            typer.echo(f"error: --date {day_text!r} is not a day as YYYY-MM-DD", err=True)
            raise typer.Exit(2) from None

    async def run() -> DailyReport:
        database = create_engine(settings.database_url)
        try:
            await upgrade_to_head(database)
            async with read_only(database).connect() as connection:
                return await notifications_service.build_daily_report(
                    connection, day, settings.report_zone, now
                )
        finally:
            await database.dispose()

    return run_event_loop(run())


@report_app.command("show")
def report_show(day: ReportDate = None) -> None:
    """Print the daily report of a day (plain text), as it stands now."""
    from sms_sender.notifications import render

    settings = settings_from_env()
    report = _daily_report(settings, day)
    typer.echo(render.daily_report(report, settings.public_url).text, nl=False)


@report_app.command("send")
def report_send(day: ReportDate = None) -> None:
    """E-mail the daily report of a day to SMS_SENDER_REPORT_TO now (once, no retries)."""
    from sms_sender.notifications import render
    from sms_sender.notifications.mail import Mailer, MailError

    settings = settings_from_env()
    if not settings.report_to:
        typer.echo("error: SMS_SENDER_REPORT_TO is not set: nobody to send the report to", err=True)
        raise typer.Exit(1)
    report = _daily_report(settings, day)
    letter = render.daily_report(report, settings.public_url)
    mailer = Mailer(settings.smtp_server, settings.report_from, settings.smtp_timeout)
    try:
        run_event_loop(mailer.send(letter, settings.report_to, SystemClock().now()))
    except MailError as error:
        typer.echo(f"error: the report was not sent: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"sent the report of {report.day.isoformat()} to {', '.join(settings.report_to)}")
