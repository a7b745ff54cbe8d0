"""Test data, one way: the ``arrange`` fixture makes rows as users would and reads them back.

    await arrange.clients([ClientSpec("79001234567", tag="vip")])   # a client with tag vip
    mailing_id = await arrange.mailing(tags=["vip"])                 # running now over them
    first, second = await arrange.reports(mailing_id)
    await arrange.reports_in(ReportStatus.DELIVERED, [first.id])    # reports in a status

Each call commits in its own session, so the app, the engine and other processes see the rows
and no test session holds SQLite's write lock. Mailings go through the mailings service, as the
API's do; a test whose subject is the API call itself makes it with the ``client`` fixture.
``stored_mailing`` writes history directly: a mailing in any status at any time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.clients.models import Client
from sms_sender.clock import Clock
from sms_sender.consent.rules import MailingPurpose
from sms_sender.mailings import service as mailings_service
from sms_sender.mailings.models import Mailing
from sms_sender.mailings.schemas import MailingCreate, MailingFilter, SendWindow
from sms_sender.messages.models import Message
from sms_sender.reports.models import Report, ReportStatus


@dataclass(frozen=True)
class ClientSpec:
    phone: str
    operator_code: str = "916"
    tag: str | None = None
    timezone: str = "UTC"


def phones(count: int, start: int = 0) -> list[str]:
    return [f"7900{index:07d}" for index in range(start, start + count)]


class Arrange:
    """Test data, each call committed so the app, the engine and other processes see it."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self._report_phone = 0

    async def clients(self, specs: Sequence[ClientSpec]) -> list[int]:
        """The new clients' ids, in the order of ``specs``."""
        now = self.clock.now()
        rows = [
            {
                "phone": spec.phone,
                "operator_code": spec.operator_code,
                "tag": spec.tag,
                "timezone": spec.timezone,
                "created_at": now,
                "updated_at": now,
            }
            for spec in specs
        ]
        async with self.sessionmaker() as session, session.begin():
            await session.execute(insert(Client), rows)
            made = await session.execute(
                select(Client.phone, Client.id).where(
                    Client.phone.in_([spec.phone for spec in specs])
                )
            )
            id_of = {row.phone: row.id for row in made}
            return [id_of[spec.phone] for spec in specs]

    async def many_clients(self, count: int, **fields: Any) -> list[int]:
        return await self.clients([ClientSpec(phone, **fields) for phone in phones(count)])

    async def message(self, text: str = "Hello from sms-sender") -> int:
        async with self.sessionmaker() as session, session.begin():
            return await self._add_message(session, text)

    async def _add_message(self, session: AsyncSession, text: str) -> int:
        now = self.clock.now()
        message = Message(text=text, created_at=now, updated_at=now)
        session.add(message)
        await session.flush()
        return message.id

    async def mailing(
        self,
        *,
        start_in: timedelta = timedelta(0),
        lasts: timedelta = timedelta(hours=1),
        text: str = "Hello from sms-sender",
        message_id: int | None = None,
        operator_codes: Sequence[str] = (),
        tags: Sequence[str] = (),
        send_window: tuple[str, str] | None = None,
        purpose: MailingPurpose = MailingPurpose.SERVICE,
    ) -> int:
        """A mailing created through the mailings service: running at once if it starts now.

        It sends ``text`` in a new message, or the message ``message_id`` if given.
        """
        now = self.clock.now()
        window = SendWindow(start=send_window[0], end=send_window[1]) if send_window else None
        async with self.sessionmaker() as session, session.begin():
            payload = MailingCreate(
                start_at=now + start_in,
                end_at=now + start_in + lasts,
                message_id=message_id or await self._add_message(session, text),
                filter=MailingFilter(operator_codes=list(operator_codes), tags=list(tags)),
                send_window=window,
                purpose=purpose,
            )
            mailing = await mailings_service.create(session, payload, now)
            return mailing.id

    async def reports_in(
        self, status: ReportStatus, report_ids: Iterable[int], **values: Any
    ) -> None:
        """Put reports in a status as the engine would; ``values`` set other columns too."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(Report)
                .where(Report.id.in_(list(report_ids)))
                .values(status=status, **values)
            )

    async def statuses(self, mailing_id: int) -> Counter[str]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(Report.status).where(Report.mailing_id == mailing_id)
            )
            return Counter(rows)

    async def reports(self, mailing_id: int) -> list[Report]:
        """The mailing's reports as stored now, in id order."""
        async with self.sessionmaker() as session:
            query = select(Report).where(Report.mailing_id == mailing_id).order_by(Report.id)
            return list(await session.scalars(query))

    async def mailing_status(self, mailing_id: int) -> str:
        async with self.sessionmaker() as session:
            mailing = await session.get(Mailing, mailing_id)
            assert mailing is not None
            return mailing.status

    async def control(self, action: str, mailing_id: int) -> None:
        """pause / resume / cancel, as the API does it."""
        async with self.sessionmaker() as session, session.begin():
            await getattr(mailings_service, action)(session, mailing_id, self.clock.now())

    async def stored_mailing(
        self,
        *,
        status: str,
        started_at: datetime | None,
        start_at: datetime | None = None,
        finished_at: datetime | None = None,
        reports: dict[str, int] | None = None,
        errors: dict[str, str] | None = None,
        updated_at: datetime | None = None,
        **columns: Any,
    ) -> int:
        """A mailing written as rows in any status at any time, e.g. finished yesterday.

        The history the mailings service cannot make now: ``reports`` {status: count}, failed
        ones carrying ``errors[status]``; phones 7900… counted on from the last call.
        """
        start_at = start_at or started_at
        if start_at is None:
            raise ValueError("a mailing needs a start_at or a started_at")
        async with self.sessionmaker() as session, session.begin():
            message = Message(text="Winter sale -20%", created_at=start_at, updated_at=start_at)
            session.add(message)
            await session.flush()
            mailing = Mailing(
                start_at=start_at,
                end_at=start_at + timedelta(days=2),
                message_id=message.id,
                filter_operator_codes=[],
                filter_tags=[],
                status=status,
                created_at=start_at,
                updated_at=start_at,
                started_at=started_at,
                finished_at=finished_at,
                **columns,
            )
            session.add(mailing)
            await session.flush()
            mailing_id = mailing.id
        await self.stored_reports(
            mailing_id, reports or {}, errors, updated_at or start_at, start_at
        )
        return mailing_id

    async def stored_reports(
        self,
        mailing_id: int,
        reports: dict[str, int],
        errors: dict[str, str] | None = None,
        updated_at: datetime | None = None,
        created_at: datetime | None = None,
    ) -> None:
        """``reports`` {status: count} more reports of the mailing; failed ones get ``errors``."""
        moment = updated_at or created_at
        if moment is None:
            raise ValueError("reports need an updated_at or a created_at")
        rows = []
        for report_status, count in reports.items():
            for _ in range(count):
                self._report_phone += 1
                rows.append(
                    {
                        "mailing_id": mailing_id,
                        "client_id": None,
                        "phone": f"7900{self._report_phone:07d}",
                        "text": "Winter sale -20%",
                        "timezone": "UTC",
                        "status": report_status,
                        "attempts": 1,
                        "next_attempt_at": created_at or moment,
                        "created_at": created_at or moment,
                        "updated_at": moment,
                        "error": (errors or {}).get(report_status),
                    }
                )
        if rows:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(insert(Report), rows)
