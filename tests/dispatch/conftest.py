"""Arranging engine tests: clients, messages and mailings as users make them, and engines."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.clients.models import Client
from sms_sender.config import Settings
from sms_sender.db import Notifier
from sms_sender.dispatch import DeliveryEngine, EngineTuning, RetryPolicy, WorkerTuning
from sms_sender.mailings import service as mailings_service
from sms_sender.mailings.models import Mailing
from sms_sender.mailings.schemas import MailingCreate, MailingFilter, SendWindow
from sms_sender.messages.models import Message
from sms_sender.providers.base import Provider
from sms_sender.reports.models import Report
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")


@dataclass(frozen=True)
class ClientSpec:
    phone: str
    operator_code: str = "916"
    tag: str | None = None
    timezone: str = "UTC"


def phones(count: int, start: int = 0) -> list[str]:
    return [f"7900{index:07d}" for index in range(start, start + count)]


class Arrange:
    """Rows as the API would make them, committed so the engine (and other processes) see them."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock

    async def clients(self, specs: Sequence[ClientSpec]) -> list[int]:
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
            ids = await session.scalars(
                select(Client.id).where(Client.phone.in_([spec.phone for spec in specs]))
            )
            return sorted(ids)

    async def many_clients(self, count: int, **fields: Any) -> list[int]:
        return await self.clients([ClientSpec(phone, **fields) for phone in phones(count)])

    async def mailing(
        self,
        *,
        start_in: timedelta = timedelta(0),
        lasts: timedelta = timedelta(hours=1),
        text: str = "Hello from sms-sender",
        operator_codes: Sequence[str] = (),
        tags: Sequence[str] = (),
        send_window: tuple[str, str] | None = None,
    ) -> int:
        """A mailing created through the mailings service: running at once if it starts now."""
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            message = Message(text=text, created_at=now, updated_at=now)
            session.add(message)
            await session.flush()
            window = SendWindow(start=send_window[0], end=send_window[1]) if send_window else None
            payload = MailingCreate(
                start_at=now + start_in,
                end_at=now + start_in + lasts,
                message_id=message.id,
                filter=MailingFilter(operator_codes=list(operator_codes), tags=list(tags)),
                send_window=window,
            )
            mailing = await mailings_service.create(session, payload, now)
            return mailing.id

    async def statuses(self, mailing_id: int) -> Counter[str]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(Report.status).where(Report.mailing_id == mailing_id)
            )
            return Counter(rows)

    async def reports(self, mailing_id: int) -> list[Report]:
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


@pytest.fixture
def arrange(sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock) -> Arrange:
    return Arrange(sessionmaker, clock)


# Short enough that a test never waits on them, long enough not to busy-loop.
FAST = EngineTuning(
    worker=WorkerTuning(poll_interval=timedelta(seconds=5), result_linger=0.01, shutdown_grace=2.0),
    scheduler_poll=timedelta(seconds=5),
    retry_after_error=0.1,
)

EngineFactory = Callable[..., DeliveryEngine]


@pytest.fixture
def make_engine(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    clock: FakeClock,
) -> EngineFactory:
    """An engine over the test database; keyword arguments override settings."""

    def build(
        provider: Provider,
        *,
        tuning: EngineTuning = FAST,
        retry: RetryPolicy | None = None,
        notifier_: Notifier | None = None,
        sessionmaker_: async_sessionmaker[AsyncSession] | None = None,
        **overrides: Any,
    ) -> DeliveryEngine:
        defaults: dict[str, Any] = {"rate_limit": 1_000_000.0, "retry_backoff": 1.0}
        engine_settings = settings.model_copy(update={**defaults, **overrides})
        return DeliveryEngine(
            settings=engine_settings,
            sessionmaker=sessionmaker_ or sessionmaker,
            notifier=notifier_ or notifier,
            clock=clock,
            provider=provider,
            tuning=tuning,
            retry=retry,
        )

    return build


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = 10.0, what: str = "condition"
) -> None:
    """Poll a condition that another task or process makes true (the database has no events)."""
    try:
        async with asyncio.timeout(within):
            while not await condition():  # noqa: ASYNC110 - rows in a database fire no events
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {within:g}s") from None
