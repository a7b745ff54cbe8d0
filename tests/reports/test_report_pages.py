"""Keyset pages of reports: exact while statuses change, and read from an index in id order."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sms_sender.reports import repository
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange
from tests.plans import Statement, sqlite_plan, the_select

pytestmark = pytest.mark.usefixtures("clean_db")

STATUSES = list(ReportStatus)
CLIENTS = 23


@pytest.fixture
async def mailings(arrange: Arrange) -> list[int]:
    """Three running mailings to the same clients, their reports spread over every status."""
    await arrange.many_clients(CLIENTS)
    message_id = await arrange.message("Sale!")
    made = [await arrange.mailing(message_id=message_id) for _ in range(3)]
    for mailing_id in made:
        reports = await arrange.reports(mailing_id)
        for offset, status in enumerate(STATUSES):
            spread = reports[offset :: len(STATUSES)]
            await arrange.reports_in(status, [report.id for report in spread])
    return made


async def _pages(
    client: httpx.AsyncClient, params: dict[str, Any], between: Callable[[int], Awaitable[None]]
) -> list[int]:
    """Every id the pages give, with ``between(turn)`` run after each page but the last."""
    seen: list[int] = []
    cursor = None
    for turn in range(100):
        query = params | ({"cursor": cursor} if cursor else {})
        answer = await client.get("/api/v1/reports", params=query)
        assert answer.status_code == 200, answer.text
        seen += [item["id"] for item in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return seen
        await between(turn)
    raise AssertionError("the pages never ended")


async def test_a_mailings_pages_give_each_report_once_in_id_order(
    client: httpx.AsyncClient, arrange: Arrange, mailings: list[int]
) -> None:
    for mailing_id in mailings:
        expected = [report.id for report in await arrange.reports(mailing_id)]

        async def move_some(turn: int, mailing_id: int = mailing_id) -> None:
            # Reports seen and not yet seen change status, as a running mailing's do.
            reports = await arrange.reports(mailing_id)
            moved = [report.id for report in reports[turn % 4 :: 4]]
            await arrange.reports_in(STATUSES[turn % len(STATUSES)], moved)

        params = {"mailing_id": mailing_id, "limit": 3}
        assert await _pages(client, params, move_some) == expected


async def test_pages_of_one_status_of_a_mailing_are_exact(
    client: httpx.AsyncClient, arrange: Arrange, mailings: list[int]
) -> None:
    mailing_id = mailings[1]
    reports = await arrange.reports(mailing_id)
    pending = [report.id for report in reports if report.status == ReportStatus.PENDING]
    assert len(pending) > 2  # more than a page

    async def nothing(turn: int) -> None:
        return None

    params = {"mailing_id": mailing_id, "status": "pending", "limit": 2}
    assert await _pages(client, params, nothing) == pending


async def test_pages_of_pending_reports_of_every_mailing_are_exact(
    client: httpx.AsyncClient, arrange: Arrange, mailings: list[int]
) -> None:
    """Read mailing by mailing, from the mailings the counters say have pending reports."""
    first, *others = mailings
    await arrange.reports_in(
        ReportStatus.SENT, [report.id for report in await arrange.reports(first)]
    )
    pending = [
        report.id
        for mailing_id in others
        for report in await arrange.reports(mailing_id)
        if report.status == ReportStatus.PENDING
    ]
    assert len(pending) > 4  # several pages, from two mailings

    async def nothing(turn: int) -> None:
        return None

    params = {"status": "pending", "limit": 2}
    assert await _pages(client, params, nothing) == sorted(pending)


# Each shape of GET /reports, as (mailing, status, phone); a mailing is replaced by its id.
SHAPES = [
    pytest.param(True, None, False, id="mailing"),
    pytest.param(True, ReportStatus.SENT, False, id="mailing-status"),
    pytest.param(True, None, True, id="mailing-phone"),
    pytest.param(False, ReportStatus.SENT, False, id="status"),
    pytest.param(False, ReportStatus.PENDING, False, id="pending"),
    pytest.param(False, None, True, id="phone"),
    pytest.param(False, None, False, id="none"),
]
# What ANALYZE records for a table of 3,000,000 reports in three mailings. With these figures
# SQLite took the primary key for a mailing's page (filtered by mailing: at the end of a
# mailing it read every later one); with none it sorted the whole mailing in a temp B-tree.
BIG_TABLE_STATS = [
    ("reports", "ix_reports_mailing_pages", "3000000 1000000 100000 1"),
    ("reports", "ix_reports_status_id", "3000000 300000 1"),
    ("reports", "ix_reports_phone", "3000000 3"),
    ("reports", "uq_reports_client_id_mailing_id", "3000000 3 1"),
]


async def _page_statement(
    session: AsyncSession, engine: AsyncEngine, mailing_id: int, shape: tuple[Any, ...]
) -> Statement:
    by_mailing, status, by_phone = shape
    statement = await the_select(
        engine,
        lambda: repository.page(
            session,
            mailing_id=mailing_id if by_mailing else None,
            status=status,
            phone="79000000001" if by_phone else None,
            after_id=5,
            limit=50,
        ),
        reading="FROM reports",
    )
    await session.rollback()
    return statement


@pytest.mark.parametrize("with_stats", [False, True], ids=["no-stats", "big-table-stats"])
@pytest.mark.parametrize(("by_mailing", "status", "by_phone"), SHAPES)
async def test_sqlite_reads_a_page_in_index_order(
    dialect: str,
    clean_db: AsyncEngine,
    session: AsyncSession,
    mailings: list[int],
    with_stats: bool,
    by_mailing: bool,
    status: ReportStatus | None,
    by_phone: bool,
) -> None:
    if dialect != "sqlite":
        pytest.skip("SQLite's plan (PostgreSQL's: the next test)")
    shape = (by_mailing, status, by_phone)
    statement = await _page_statement(session, clean_db, mailings[1], shape)
    if with_stats:
        async with clean_db.begin() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.execute(text("DELETE FROM sqlite_stat1"))
            for row in BIG_TABLE_STATS:
                await connection.execute(
                    text("INSERT INTO sqlite_stat1 VALUES (:tbl, :idx, :stat)"),
                    dict(zip(("tbl", "idx", "stat"), row, strict=True)),
                )
    try:
        # Every pooled connection reads the figures anew: the schema changed.
        plan = await sqlite_plan(clean_db, statement)
    finally:
        async with clean_db.begin() as connection:
            await connection.execute(text("DROP TABLE IF EXISTS sqlite_stat1"))
        # The connection that dropped the figures keeps them in memory (the others read the
        # schema anew); pooled, it planned later tests' statements with them (a clients
        # search test sorted its page whenever it ran after this one).
        await clean_db.dispose()
    assert "SCAN reports" not in plan, plan
    if by_phone:
        # A phone's reports: its clients' through the unique (client_id, mailing_id) index,
        # one per mailing, sorted (a client's reports are not in id order there); deleted
        # clients' from the partial phone index, or by mailing from the unique index.
        assert "sqlite_autoindex_reports_1 (client_id=?" in plan, plan
    else:
        assert "TEMP B-TREE" not in plan, plan
    if by_mailing and not by_phone:
        assert plan.count("ix_reports_mailing_pages") == (1 if status else len(STATUSES)), plan
        assert "rowid>?" not in plan, plan
    if status == ReportStatus.PENDING and not by_mailing:  # each mailing with pending reports
        assert plan.count("ix_reports_mailing_pages") == len(mailings), plan


async def test_postgresql_reads_each_status_of_a_mailing_from_its_index(
    dialect: str, clean_db: AsyncEngine, session: AsyncSession, mailings: list[int]
) -> None:
    """Every status's first rows come from ix_reports_mailing_pages, in its order (no sort).

    Sorting is made all but forbidden, so only an index whose order is the subqueries' own can
    serve them: this fails if the index and the query spell that order differently.
    """
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's plan (SQLite's: the previous test)")
    statement, parameters = await _page_statement(
        session, clean_db, mailings[1], (True, None, False)
    )
    async with clean_db.connect() as connection:
        await connection.execute(text("SET LOCAL enable_sort = off"))
        await connection.execute(text("SET LOCAL enable_seqscan = off"))
        [[document]] = (
            await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        ).all()
    plan = document if isinstance(document, list) else json.loads(document)
    limited = list(_nodes_under_limits(plan[0]["Plan"]))
    assert len(limited) == len(STATUSES)
    assert {node.get("Index Name") for node in limited} == {"ix_reports_mailing_pages"}


OTHER_CLIENTS = """
    INSERT INTO reports (mailing_id, client_id, phone, text, timezone, status, attempts,
                         next_attempt_at, created_at, updated_at)
    SELECT :mailing_id, 1000 + g, CAST(78000000000 + g AS TEXT), 'x', 'UTC', 'sent', 1, now(),
           now(), now()
    FROM generate_series(1, 20000) AS g
"""


@pytest.mark.parametrize("by_mailing", [False, True], ids=["phone", "mailing-phone"])
async def test_postgresql_reads_a_phones_reports_through_its_clients_and_the_detached_index(
    dialect: str,
    clean_db: AsyncEngine,
    session: AsyncSession,
    mailings: list[int],
    by_mailing: bool,
) -> None:
    """A client's reports by the unique index, deleted clients' by the partial phone index.

    With sequential scans all but forbidden, a part whose index cannot serve it shows as a
    scan of reports: this fails if the query stops implying the partial index's condition.
    """
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's plan (SQLite's: test_sqlite_reads_a_page_in_index_order)")
    statement, parameters = await _page_statement(
        session, clean_db, mailings[1], (by_mailing, None, True)
    )
    async with clean_db.connect() as connection:
        # Many clients' reports in the mailing (rolled back), so that a walk of the primary key
        # or of the mailing's reports reads far more than the client's, as at any real size.
        await connection.execute(text(OTHER_CLIENTS), {"mailing_id": mailings[1]})
        # Figures of the tables as they are now: the owners' tables keep whatever an earlier
        # test left in their statistics otherwise (seen: a walk of the primary key instead).
        await connection.execute(text("ANALYZE reports, clients, client_former_phones"))
        await connection.execute(text("SET LOCAL enable_seqscan = off"))
        [[document]] = (
            await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        ).all()
    plan = document if isinstance(document, list) else json.loads(document)
    nodes = list(_nodes(plan[0]["Plan"]))
    scans = [node for node in nodes if node.get("Node Type") == "Seq Scan"]
    assert not [node for node in scans if node.get("Relation Name") == "reports"], plan
    indexes = {node["Index Name"] for node in nodes if "Index Name" in node}
    assert "uq_reports_client_id_mailing_id" in indexes, plan
    if not by_mailing:
        assert "ix_reports_phone" in indexes, plan


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


FAILED_ELSEWHERE = """
    INSERT INTO reports (mailing_id, phone, text, timezone, status, attempts, next_attempt_at,
                         created_at, updated_at)
    SELECT 0, '79000000000', 'x', 'UTC', 'failed', 1, now(), now(), now()
    FROM generate_series(1, 20000)
"""


@pytest.mark.parametrize("status", [ReportStatus.SENT, ReportStatus.PENDING])
async def test_postgresql_reads_a_status_page_from_an_index_in_id_order(
    dialect: str,
    clean_db: AsyncEngine,
    session: AsyncSession,
    mailings: list[int],
    status: ReportStatus,
) -> None:
    """Whatever the plan cache does: (status, id) for a status, by mailing for ``pending``.

    PostgreSQL's (status, id) holds every status but pending, so only a plan that knows the
    status can take it; the plan is made generic (for any parameter values) to prove it does.
    """
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's plan (SQLite's: test_sqlite_reads_a_page_in_index_order)")
    statement, parameters = await _page_statement(
        session, clean_db, mailings[1], (False, status, False)
    )
    async with clean_db.connect() as connection:
        # A table where a walk of the primary key would read far more than a page (rolled back):
        # with a few dozen reports that walk is as cheap as any index, whatever the plan knows.
        await connection.execute(text(FAILED_ELSEWHERE))
        await connection.execute(text("ANALYZE reports"))
        for setting in ("enable_sort = off", "enable_seqscan = off", "enable_bitmapscan = off"):
            await connection.execute(text(f"SET LOCAL {setting}"))
        await connection.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        await connection.exec_driver_sql(f"PREPARE page AS {statement}")
        values = ", ".join(
            str(value) if isinstance(value, int) else f"'{ReportStatus(value)}'"
            for value in parameters
        )
        explain = "EXPLAIN (FORMAT JSON) EXECUTE page" + (f"({values})" if values else "")
        try:
            [[document]] = (await connection.exec_driver_sql(explain)).all()
        finally:
            await connection.exec_driver_sql("DEALLOCATE page")
    plan = document if isinstance(document, list) else json.loads(document)
    indexes = [node.get("Index Name") for node in _nodes(plan[0]["Plan"])]
    if status == ReportStatus.PENDING:
        assert indexes.count("ix_reports_mailing_pages") == len(mailings), indexes
        assert "ix_reports_status_id" not in indexes, indexes
    else:
        assert "ix_reports_status_id" in indexes, indexes


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _nodes_under_limits(node: dict[str, Any], under_limit: int = 0) -> Iterator[dict[str, Any]]:
    """The nodes read by a Limit inside the plan's top one: the per-status reads."""
    if under_limit == 2:
        yield node
        return
    depth = under_limit + (node["Node Type"] == "Limit")
    for child in node.get("Plans", []):
        yield from _nodes_under_limits(child, depth)
