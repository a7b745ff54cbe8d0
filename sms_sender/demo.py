"""``sms-sender demo``: a small directory, two messages and two mailings, built through the
same services the API uses, so a new user sees every part of the flow within a minute."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.clients.csv_import import import_clients
from sms_sender.consent.rules import PhoneHasher
from sms_sender.mailings import service as mailings
from sms_sender.mailings.schemas import MailingCreate, MailingFilter, SendWindow
from sms_sender.messages import service as messages
from sms_sender.messages.schemas import MessageCreate

# (operator code, tag, time zone): 30 clients spread over three of each.
_PROFILES = [
    ("916", "vip", "Europe/Moscow"),
    ("926", "new", "Asia/Yekaterinburg"),
    ("903", "regular", "Asia/Vladivostok"),
]
DEMO_CLIENTS = 30


def demo_csv_lines() -> list[str]:
    header = "phone,operator_code,tag,timezone"
    rows = [
        f"7{code}{number:07d},{code},{tag},{zone}"
        for number in range(DEMO_CLIENTS)
        for code, tag, zone in [_PROFILES[number % len(_PROFILES)]]
    ]
    return [header, *rows]


async def load_demo(session: AsyncSession, now: datetime, hasher: PhoneHasher) -> str:
    """Create the demo data (clients already there are skipped) and describe what was made."""
    imported = await import_clients(
        session, [demo_csv_lines()], default_timezone="UTC", hasher=hasher, now=now
    )
    sale = await messages.create(
        session, MessageCreate(text="Winter sale: -20% on everything until Sunday!"), now
    )
    reminder = await messages.create(
        session, MessageCreate(text="Напоминаем: ваша скидка действует до конца недели."), now
    )
    at_once = await mailings.create(
        session,
        MailingCreate(
            start_at=now,
            end_at=now + timedelta(hours=1),
            message_id=sale.id,
            filter=MailingFilter(tags=["vip", "new"]),
        ),
        now,
    )
    later = await mailings.create(
        session,
        MailingCreate(
            start_at=now + timedelta(minutes=2),
            end_at=now + timedelta(days=1),
            message_id=reminder.id,
            filter=MailingFilter(operator_codes=["903"]),
            send_window=SendWindow(start="09:00", end="21:00"),
        ),
        now,
    )
    return "\n".join(
        [
            f"demo: {imported.imported} clients imported ({imported.failed} already there)",
            f"demo: messages {sale.id} and {reminder.id}",
            f"demo: mailing {at_once.id} to tags vip+new is {at_once.status} now;",
            f"demo: mailing {later.id} to operator 903 starts by itself in 2 minutes, "
            "between 09:00 and 21:00 in each client's time zone",
            "demo: watch them at GET /api/v1/mailings and /api/v1/reports (Swagger UI: /docs)",
        ]
    )
