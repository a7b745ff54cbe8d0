"""The default provider: prints each message as one line on stdout instead of sending it.

It makes the whole service observable with nothing to set up (``sms-sender serve`` on a laptop
shows every send), and it is what a new user sees first, so a line names the mailing and the
report as well as the phone and the text.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from sms_sender.providers.base import OutgoingMessage, SendResult


class ConsoleProvider:
    """Prints ``SMS to <phone> [mailing <id>, report <id>]: <text>``, one line per message.

    ``idempotent`` is True: nothing reaches a phone, so printing a message twice harms no one,
    and after a crash the engine re-prints the messages whose outcome was lost instead of marking
    them ``unknown`` — a demo run then ends with every report ``sent``.
    """

    name = "console"
    idempotent = True

    def __init__(self, stream: TextIO | None = None) -> None:
        # None means "sys.stdout at the time of the call", so redirection (and pytest's capsys)
        # made after start-up is honoured.
        self._stream = stream

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        stream = self._stream or sys.stdout
        stream.write("".join(f"{format_line(message)}\n" for message in batch))
        stream.flush()
        return [SendResult.accepted() for _ in batch]


def format_line(message: OutgoingMessage) -> str:
    """One line per message: line breaks inside the text are shown escaped."""
    text = message.text.replace("\r", "\\r").replace("\n", "\\n")
    return (
        f"SMS to {message.phone} [mailing {message.mailing_id}, report {message.report_id}]: {text}"
    )
