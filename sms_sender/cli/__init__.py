"""The ``sms-sender`` command line (Typer): run the service, migrate, manage tokens, import.

One module per command group: ``service`` (migrate, api, serve, worker), ``data`` (import,
demo), ``tokens``, ``users``, ``reports``; ``_common`` holds what they share.
"""

from __future__ import annotations

import typer

from sms_sender.cli import data, service
from sms_sender.cli._common import run_event_loop
from sms_sender.cli.reports import report_app
from sms_sender.cli.tokens import token_app
from sms_sender.cli.users import user_app

app = typer.Typer(
    help="sms-sender: SMS mailings that start on time, stop at their end and never repeat.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(service.migrate)
app.command()(service.api)
app.command()(service.serve)
app.command()(service.worker)
app.command("import")(data.import_csv)
app.command()(data.demo)
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")
app.add_typer(report_app, name="report")

__all__ = ["app", "run_event_loop"]
