"""Sending e-mail through ``SMS_SENDER_SMTP_URL`` with aiosmtplib.

``smtps://`` speaks TLS from the first byte; ``smtp://`` upgrades with STARTTLS whenever the
server offers it, and insists on it when the URL carries a password, so a password never
crosses the network in clear (a server on this machine, 127.0.0.1 or ::1, is exempt: that is
how a local relay and the tests' server listen). Every failure, whatever its cause (refused,
unreachable, too slow), comes out as :class:`MailError` with a reason a person can read; the
caller decides when to try again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib

from sms_sender.config import SmtpServer
from sms_sender.notifications.render import Letter
from sms_sender.providers.gateway_url import is_loopback


class MailError(Exception):
    """The mail server did not take the message; ``str()`` says why."""


class Mailer:
    """Sends letters from one address through one SMTP server."""

    def __init__(self, server: SmtpServer, sender: str, timeout: float) -> None:
        self.server = server
        self.sender = sender
        self.timeout = timeout

    async def send(self, letter: Letter, recipients: Sequence[str], now: datetime) -> None:
        """Hand the letter to the server for every recipient, or raise MailError."""
        message = compose(letter, self.sender, recipients, now)
        server = self.server
        password = server.password.get_secret_value() if server.password else None
        try:
            await aiosmtplib.send(
                message,
                hostname=server.host,
                port=server.port,
                username=server.username,
                password=password,
                use_tls=server.implicit_tls,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            # TimeoutError and ConnectionError are OSErrors; SMTP replies carry their code.
            reason = str(error) or type(error).__name__
            raise MailError(f"{server.host}:{server.port}: {reason}") from error

    @property
    def start_tls(self) -> bool | None:
        """aiosmtplib's start_tls: True insists on STARTTLS, None uses it when offered."""
        if self.server.implicit_tls:
            return False
        if self.server.password is not None and not is_loopback(self.server.host):
            return True  # refuse to log in over a connection anyone could read
        return None  # STARTTLS when offered


def compose(letter: Letter, sender: str, recipients: Sequence[str], now: datetime) -> EmailMessage:
    """A multipart/alternative message: the plain text first, the HTML as the richer choice."""
    message = EmailMessage()
    message["Subject"] = letter.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    # The sender may be written "SMS sender <sms@example.com>": the id takes its domain.
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    message.set_content(letter.text)
    message.add_alternative(letter.html, subtype="html")
    return message
