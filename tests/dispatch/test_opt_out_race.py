"""An opt-out committed while a mailing is sending stops every later send to those clients.

The fake provider records when each call starts by the wall clock; the test notes the wall
clock right after the opt-out's commit returned. A call that started later would be a message
sent to someone who had already asked to stop.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.clients.models import Client
from sms_sender.clock import SystemClock
from sms_sender.consent import service as consent_service
from sms_sender.consent.rules import PhoneHasher
from sms_sender.dispatch import ratelimit
from sms_sender.providers.fake import FakeProvider, accept
from tests.arrange import Arrange
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")

CLIENTS = 1000
GROUP = 20  # the worker's concurrency, and the most it hands over at once


async def _opt_out(
    sessionmaker: async_sessionmaker[AsyncSession], client_ids: list[int], clock: FakeClock
) -> datetime:
    """Opt the clients out as the API does; the wall-clock time once the commit returned."""
    async with sessionmaker() as session:
        await consent_service.opt_out_clients(
            session,
            client_ids,
            source="race test",
            actor="api:tests",
            hasher=PhoneHasher(b"test key"),
            now=clock.now(),
        )
        await session.commit()
    return datetime.now(UTC)


@pytest.mark.parametrize(
    ("rate", "group_seconds"),
    [
        # A handed-over group's calls start one rate slot after another for a whole second:
        # the opt-out surely commits while some of them have not started yet.
        (20.0, 1.0),
        # As configured, at speed: 20 reports handed over every 20 ms.
        (1_000.0, ratelimit.GROUP_SECONDS),
    ],
)
async def test_no_send_starts_after_the_opt_out_commits(
    arrange: Arrange,
    make_engine: EngineFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    rate: float,
    group_seconds: float,
) -> None:
    monkeypatch.setattr(ratelimit, "GROUP_SECONDS", group_seconds)
    client_ids = await arrange.many_clients(CLIENTS)
    mailing_id = await arrange.mailing()
    # Calls are timed by the wall clock; the engine keeps the test's clock for its schedule.
    provider = FakeProvider(clock=SystemClock(), default=accept(delay=0.003))
    engine = make_engine(provider, rate_limit=rate, concurrency=GROUP)

    async with engine.running():
        await provider.wait_for_calls(GROUP + 2)  # in the middle of a group
        committed_at = await _opt_out(sessionmaker, client_ids, clock)

        async def settled() -> bool:
            statuses = await arrange.statuses(mailing_id)
            return statuses["pending"] + statuses["sending"] == 0

        await eventually(settled, what="every report settled")

    late = [call.report_id for call in provider.calls if call.started_at > committed_at]
    assert late == [], f"{len(late)} sends started after the opt-out committed"
    statuses = await arrange.statuses(mailing_id)
    sent = len(provider.calls)
    assert statuses == Counter({"sent": sent, "skipped": CLIENTS - sent})
    assert GROUP < sent < CLIENTS  # the opt-out did land mid-mailing
    reports = await arrange.reports(mailing_id)
    assert {report.error for report in reports if report.status == "skipped"} == {"opted_out"}


async def test_the_hand_over_skips_a_report_whose_client_opted_out(
    arrange: Arrange,
    make_engine: EngineFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    """The engine's own check, should a pending report of an opted-out client exist at all
    (an opt-out through the service skips them first): never sent, skipped, not claimed again."""
    client_ids = await arrange.many_clients(3)
    mailing_id = await arrange.mailing()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Client).where(Client.id == client_ids[1]).values(opted_out_at=clock.now())
        )
    provider = FakeProvider(clock=clock)

    await make_engine(provider).worker.drain()

    reports = {report.client_id: report for report in await arrange.reports(mailing_id)}
    assert sorted(call.message.client_id for call in provider.calls) == [
        client_ids[0],
        client_ids[2],
    ]
    skipped = reports[client_ids[1]]
    assert (skipped.status, skipped.error, skipped.lease_owner) == ("skipped", "opted_out", None)
