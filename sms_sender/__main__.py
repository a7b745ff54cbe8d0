"""``python -m sms_sender``: the same command line as ``sms-sender``."""

from sms_sender.cli import app

app(prog_name="sms-sender")
