"""The default provider: prints each message as one line on stdout instead of sending it.

It makes the whole service observable with nothing to set up (``sms-sender serve`` on a laptop
shows every send), and it is what a new user sees first, so a line names the mailing and the
report as well as the phone and the text.

Its output is the delivery in console mode, but it lands where logs land (a terminal, a
container's stdout), so it shows an SMS as ``SMS_SENDER_LOG_MESSAGES`` says, through the same
:func:`~sms_sender.logging.message_fields` as the logs: ``full`` prints phone and text,
``masked`` (the service's default) the masked phone with the text's length and segments, ``off``
only the ids. Every control character is escaped, so a text cannot drive the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from sms_sender.config import LogMessages
from sms_sender.logging import escape_controls, message_fields
from sms_sender.providers.base import NO_TEXT_LIMITS, OutgoingMessage, SendResult


class ConsoleProvider:
    """Prints ``SMS to <phone> [mailing <id>, report <id>]: <text>``, one line per message.

    ``idempotent`` is True: nothing reaches a phone, so printing a message twice harms no one,
    and after a crash the engine re-prints the messages whose outcome was lost instead of marking
    them ``unknown`` — a demo run then ends with every report ``sent``.
    """

    name = "console"
    idempotent = True
    text_limits = NO_TEXT_LIMITS

    def __init__(
        self, stream: TextIO | None = None, messages: LogMessages = LogMessages.FULL
    ) -> None:
        # None means "sys.stdout at the time of the call", so redirection (and pytest's capsys)
        # made after start-up is honoured.
        self._stream = stream
        self._messages = messages

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        stream = self._stream or sys.stdout
        stream.write("".join(f"{format_line(message, self._messages)}\n" for message in batch))
        stream.flush()
        return [SendResult.accepted() for _ in batch]


def format_line(message: OutgoingMessage, messages: LogMessages = LogMessages.FULL) -> str:
    """One line per message, control characters (line breaks too) shown escaped."""
    ids = f"[mailing {message.mailing_id}, report {message.report_id}]"
    shown = message_fields(message.phone, message.text, messages)
    if "text" in shown:
        return f"SMS to {shown['phone']} {ids}: {escape_controls(shown['text'])}"
    if "phone" in shown:
        segments = "segment" if shown["segments"] == 1 else "segments"
        return (
            f"SMS to {shown['phone']} {ids}: "
            f"{shown['text_length']} characters, {shown['segments']} {segments}"
        )
    return f"SMS {ids}"
