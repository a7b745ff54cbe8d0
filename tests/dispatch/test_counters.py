"""The counters (reports per mailing and status, skipped ones by reason, clients per tag and
operator code) stay exact.

Sends, a cancel, opt-outs, client deletes and tag changes, a mailing's delete and folds of the
counters race each other on a running engine; afterwards every counter must equal a full count
of the rows. A path that changes reports or clients without being counted (a trigger missing, or
dropped by a table rebuild) makes the two disagree.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.clients import repository as clients_repository
from sms_sender.clients import service as clients_service
from sms_sender.clients.models import Client, ClientFacetCount
from sms_sender.consent import service as consent_service
from sms_sender.consent.rules import MailingPurpose, PhoneHasher, SkipReason
from sms_sender.dispatch import repository as dispatch_repository
from sms_sender.mailings import fan_out
from sms_sender.mailings import service as mailings_service
from sms_sender.providers.fake import FakeProvider, accept
from sms_sender.reports import repository as reports_repository
from sms_sender.reports.models import Report, ReportStatus
from tests.arrange import Arrange, ClientSpec, phones
from tests.conftest import FakeClock
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")

CLIENTS = 600
TAGS = ("gold", "silver", "new")


async def _counted(session: AsyncSession, mailing_ids: list[int]) -> dict[int, Counter[str]]:
    counts = await reports_repository.count_by_status(session, mailing_ids)
    return {mailing_id: Counter(counts.get(mailing_id, {})) for mailing_id in mailing_ids}


async def _full_count(session: AsyncSession, mailing_ids: list[int]) -> dict[int, Counter[str]]:
    rows = await session.execute(
        select(Report.mailing_id, Report.status, func.count()).group_by(
            Report.mailing_id, Report.status
        )
    )
    counts: dict[int, Counter[str]] = {mailing_id: Counter() for mailing_id in mailing_ids}
    for mailing_id, status, count in rows:
        counts.setdefault(mailing_id, Counter())[status] = count
    return counts


async def _skipped_counted(
    session: AsyncSession, mailing_ids: list[int]
) -> dict[int, Counter[str]]:
    return {
        mailing_id: Counter(await reports_repository.count_skipped_by_reason(session, mailing_id))
        for mailing_id in mailing_ids
    }


async def _skipped_full_count(
    session: AsyncSession, mailing_ids: list[int]
) -> dict[int, Counter[str]]:
    rows = await session.execute(
        select(Report.mailing_id, Report.error, func.count())
        .where(Report.status == ReportStatus.SKIPPED)
        .group_by(Report.mailing_id, Report.error)
    )
    counts: dict[int, Counter[str]] = {mailing_id: Counter() for mailing_id in mailing_ids}
    for mailing_id, error, count in rows:
        counts.setdefault(mailing_id, Counter())[error] = count
    return counts


async def _consent(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    *,
    given: list[int],
    opted_out: list[int],
) -> None:
    """Consent to advertising for ``given``, an opt-out already on file for ``opted_out``."""
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Client).where(Client.id.in_(given)).values(consent_at=clock.now())
        )
        await session.execute(
            update(Client).where(Client.id.in_(opted_out)).values(opted_out_at=clock.now())
        )


async def _facets(session: AsyncSession) -> tuple[Counter[str], Counter[str]]:
    """Clients per tag and per operator code, from the counters' rows."""
    rows = await session.execute(
        select(ClientFacetCount.facet, ClientFacetCount.value, func.sum(ClientFacetCount.clients))
        .group_by(ClientFacetCount.facet, ClientFacetCount.value)
        .having(func.sum(ClientFacetCount.clients) != 0)
    )
    tags: Counter[str] = Counter()
    operators: Counter[str] = Counter()
    for facet, value, count in rows:
        (tags if facet == "tag" else operators)[value] = int(count)
    return tags, operators


async def _full_facets(session: AsyncSession) -> tuple[Counter[str], Counter[str]]:
    clients = (await session.execute(select(Client.tag, Client.operator_code))).all()
    tags = Counter(tag for tag, _ in clients if tag is not None)
    return tags, Counter(operator for _, operator in clients)


async def _fold_meanwhile(
    sessionmaker: async_sessionmaker[AsyncSession], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        async with sessionmaker() as session, session.begin():
            await dispatch_repository.fold_counts(await session.connection())
        await asyncio.sleep(0.01)


async def test_counters_equal_a_full_count_after_racing_changes(
    arrange: Arrange,
    make_engine: EngineFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    specs = [
        ClientSpec(phone, operator_code=("916", "903")[index % 2], tag=TAGS[index % 3])
        for index, phone in enumerate(phones(CLIENTS))
    ]
    client_ids = await arrange.clients(specs)
    # The advertising mailing skips a quarter for want of consent and a tenth opted out.
    await _consent(
        sessionmaker,
        clock,
        given=[client_id for index, client_id in enumerate(client_ids) if index % 4],
        opted_out=client_ids[-60:],
    )
    mailing_ids = [
        await arrange.mailing(),
        await arrange.mailing(),
        await arrange.mailing(),
        await arrange.mailing(purpose=MailingPurpose.ADVERTISING),
        await arrange.mailing(purpose=MailingPurpose.ADVERTISING),  # cancelled, then deleted
    ]
    provider = FakeProvider(default=accept(delay=0.002))
    engine = make_engine(provider, rate_limit=5_000.0, concurrency=20)
    hasher = PhoneHasher(b"test")
    stop_folding = asyncio.Event()

    async with engine.running():
        folding = asyncio.create_task(_fold_meanwhile(sessionmaker, stop_folding))
        await provider.wait_for_calls(50)
        await arrange.control("cancel", mailing_ids[1])
        await arrange.control("cancel", mailing_ids[4])
        for client_id in client_ids[:40]:  # deleted mid-send: unsent reports cancelled, detached
            async with sessionmaker() as session, session.begin():
                await clients_service.delete(session, client_id, hasher=hasher, now=clock.now())
        for first in range(120, 200, 20):  # opted out mid-send: unsent reports skipped
            async with sessionmaker() as session, session.begin():
                await consent_service.opt_out_clients(
                    session,
                    client_ids[first : first + 20],
                    source="counters test",
                    actor="api:tests",
                    hasher=hasher,
                    now=clock.now(),
                )
        async with sessionmaker() as session, session.begin():  # a bulk change of tags
            await session.execute(
                update(Client).where(Client.id.in_(client_ids[40:100])).values(tag="moved")
            )
            await session.execute(
                update(Client).where(Client.id.in_(client_ids[100:120])).values(tag=None)
            )

        async def settled() -> bool:
            statuses = await arrange.statuses(mailing_ids[0])
            return statuses["pending"] + statuses["sending"] == 0

        await eventually(settled, within=60, what="every report of the first mailing settled")
        stop_folding.set()
        await folding

    async with sessionmaker() as session, session.begin():
        await mailings_service.delete(session, mailing_ids[1])  # cancelled: its reports go
        await mailings_service.delete(session, mailing_ids[4])  # skipped ones too

    async with sessionmaker() as session:
        counted = await _counted(session, mailing_ids)
        assert counted == await _full_count(session, mailing_ids)
        assert counted[mailing_ids[1]] == Counter()
        assert sum(counted[mailing_ids[0]].values()) == CLIENTS
        skipped = await _skipped_counted(session, mailing_ids)
        assert skipped == await _skipped_full_count(session, mailing_ids)
        assert skipped[mailing_ids[3]].keys() == {SkipReason.NO_CONSENT, SkipReason.OPTED_OUT}
        assert skipped[mailing_ids[0]].keys() <= {SkipReason.OPTED_OUT}
        assert counted[mailing_ids[4]] == skipped[mailing_ids[4]] == Counter()
        assert await _facets(session) == await _full_facets(session)
        facets = await clients_repository.facet_values(session)
        assert facets["tag"] == ["gold", "moved", "new", "silver"]


async def _add_report_by_hand(session: AsyncSession, mailing_id: int, clock: FakeClock) -> None:
    """A report made by another statement than a fan-out's, which the triggers must count."""
    now = clock.now()
    await session.execute(
        insert(Report).values(
            mailing_id=mailing_id,
            client_id=None,
            phone="79990000000",
            text="by hand",
            timezone="UTC",
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )


async def test_a_fan_out_is_counted_and_so_is_every_report_made_after_it(
    arrange: Arrange, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await arrange.clients(
        [ClientSpec(phone, tag=TAGS[index % 3]) for index, phone in enumerate(phones(30))]
    )
    first = await arrange.mailing()
    second = await arrange.mailing(tags=["gold"])
    async with sessionmaker() as session, session.begin():
        await _add_report_by_hand(session, first, clock)

    async with sessionmaker() as session:
        counted = await _counted(session, [first, second])
        assert counted == await _full_count(session, [first, second])
        assert counted == {first: Counter(pending=31), second: Counter(pending=10)}


async def test_a_fan_out_counts_its_skipped_reports_by_reason(
    arrange: Arrange, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    client_ids = await arrange.many_clients(30)
    await _consent(sessionmaker, clock, given=client_ids[:20], opted_out=client_ids[15:25])
    service = await arrange.mailing()
    advertising = await arrange.mailing(purpose=MailingPurpose.ADVERTISING)

    async with sessionmaker() as session:
        assert await _counted(session, [service, advertising]) == {
            service: Counter(pending=20, skipped=10),
            advertising: Counter(pending=15, skipped=15),
        }
        skipped = await _skipped_counted(session, [service, advertising])
        assert skipped == await _skipped_full_count(session, [service, advertising])
        assert skipped == {
            service: Counter(opted_out=10),
            advertising: Counter(opted_out=10, no_consent=5),
        }


async def test_a_failed_fan_out_leaves_reports_counted(
    arrange: Arrange, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await arrange.many_clients(5)
    mailing_id = await arrange.mailing()
    async with sessionmaker() as session:
        with pytest.raises(IntegrityError):  # its reports exist: the UNIQUE refuses the second
            await fan_out.materialise(
                session,
                mailing_id=mailing_id,
                text="again",
                operator_codes=[],
                tags=[],
                purpose=MailingPurpose.SERVICE,
                now=clock.now(),
            )
        if session.get_bind().dialect.name == "postgresql":
            await session.rollback()  # a failed statement ends PostgreSQL's transaction
        # SQLite's goes on: a caller that carries on and commits must not lose the counting.
        await _add_report_by_hand(session, mailing_id, clock)
        await session.commit()

    async with sessionmaker() as session:
        counted = await _counted(session, [mailing_id])
        assert counted == await _full_count(session, [mailing_id])
        assert counted == {mailing_id: Counter(pending=6)}


async def test_a_fan_out_into_a_reused_mailing_id_adds_to_its_counter_rows(
    arrange: Arrange, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    # SQLite gives a deleted mailing's id to the next one (no AUTOINCREMENT), and the deleted
    # one's counter rows stay, at 0, until the scheduler folds them. A fan-out that put its
    # count in a second row beside them would have every later change counted twice.
    await arrange.many_clients(5)
    deleted = await arrange.mailing()
    await arrange.control("cancel", deleted)
    async with sessionmaker() as session, session.begin():
        await mailings_service.delete(session, deleted)

    reused = await arrange.mailing()
    async with sessionmaker() as session, session.begin():
        await _add_report_by_hand(session, reused, clock)

    async with sessionmaker() as session:
        counted = await _counted(session, [reused])
        assert counted == await _full_count(session, [reused])
        assert counted == {reused: Counter(pending=6)}
