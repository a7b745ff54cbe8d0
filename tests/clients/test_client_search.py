"""The console's client search: keyset pages that cost a page whatever the filter matches."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sms_sender.clients import repository
from tests.arrange import Arrange, ClientSpec
from tests.plans import Statement, sqlite_plan, the_select

pytestmark = pytest.mark.usefixtures("clean_db")

# Phones made in the reverse of their order, so id order and phone order differ.
MATCHING = [f"7901{number:07d}" for number in range(23, 0, -1)]
OTHERS = ["79001234567", "79021234567", "79991234567"]


async def _search(session: AsyncSession, **filters: str) -> list[str]:
    """Every phone the pages give for the filters, three clients a page."""
    found: list[str] = []
    after_id, after_phone = 0, ""
    while True:
        rows = await repository.search(
            session, after_id=after_id, after_phone=after_phone, limit=3, **filters
        )
        found += [row.phone for row in rows[:3]]
        if len(rows) <= 3:
            return found
        after_id, after_phone = rows[2].id, rows[2].phone


async def test_pages_by_phone_prefix_give_each_match_once_in_phone_order(
    arrange: Arrange, session: AsyncSession
) -> None:
    specs = [ClientSpec(phone) for phone in OTHERS[:1] + MATCHING + OTHERS[1:]]
    await arrange.clients(
        [ClientSpec(s.phone, tag="vip" if s.phone in MATCHING[1::2] else None) for s in specs]
    )

    assert await _search(session, phone_prefix="7901") == sorted(MATCHING)
    assert await _search(session, phone_prefix="79") == sorted(MATCHING + OTHERS)
    assert await _search(session, phone_prefix="790") == sorted(MATCHING + OTHERS[:2])
    assert await _search(session, phone_prefix="+7901") == []  # phones are digits only
    # With a tag the tag's index pages in id order; the prefix filters it.
    assert await _search(session, phone_prefix="7901", tag="vip") == MATCHING[1::2]
    # Without a prefix the pages stay in id order (the order the clients were added).
    assert await _search(session) == OTHERS[:1] + MATCHING + OTHERS[1:]


@pytest.mark.parametrize(
    "filters",
    [
        {"phone_prefix": "7"},
        {"phone_prefix": "79", "tag": "vip"},
        {"phone_prefix": "7999"},
        {"phone_prefix": "+7"},
        {"tag": "vip"},
        {},
    ],
    ids=["prefix-everyone", "prefix-and-tag", "prefix-all-nines", "not-digits", "tag", "none"],
)
async def test_sqlite_reads_a_search_page_in_index_order(
    dialect: str, clean_db: AsyncEngine, session: AsyncSession, filters: dict[str, str]
) -> None:
    """No filter sorts its matches for a page: a prefix nearly everyone matched ("7") did."""
    if dialect != "sqlite":
        pytest.skip("SQLite's plan")
    statement = await the_select(
        clean_db,
        lambda: repository.search(
            session, after_id=10, after_phone="79000000010", limit=50, **filters
        ),
    )
    await session.rollback()
    plan = await sqlite_plan(clean_db, statement)
    assert "TEMP B-TREE" not in plan, plan
    in_phone_order = repository.search_in_phone_order(**({"phone_prefix": "", "tag": ""} | filters))
    if in_phone_order and filters["phone_prefix"].isdigit():
        assert "(phone>?" in plan, plan  # a range of the phone index, from the cursor on


async def test_pages_by_operator_code_and_tag_give_each_match_once_in_id_order(
    arrange: Arrange, session: AsyncSession
) -> None:
    codes, tags = ["916", "903", "916", "999"], ["vip", None, "vip", "new", None]
    specs = [
        ClientSpec(phone, operator_code=codes[n % 4], tag=tags[n % 5])
        for n, phone in enumerate(MATCHING + OTHERS)
    ]
    ids = await arrange.clients(specs)

    def expected(**wanted: str) -> list[str]:
        return [
            spec.phone
            for _id, spec in sorted(zip(ids, specs, strict=True))
            if all(getattr(spec, name) == value for name, value in wanted.items())
        ]

    for filters in (
        {"operator_code": "916"},
        {"tag": "vip"},
        {"operator_code": "916", "tag": "vip"},
    ):
        assert await _search(session, **filters) == expected(**filters), filters
        api_filters = {"tags": [filters["tag"]]} if "tag" in filters else {}
        if "operator_code" in filters:
            api_filters["operator_codes"] = [filters["operator_code"]]
        assert await _api_pages(session, **api_filters) == expected(**filters), filters
    # Several codes: the pages of the primary key, filtered.
    assert await _api_pages(session, operator_codes=["903", "999"]) == [
        phone
        for phone in expected()
        if phone in expected(operator_code="903") + expected(operator_code="999")
    ]


async def _api_pages(session: AsyncSession, **filters: list[str]) -> list[str]:
    """Every phone the API's pages give for the filters, three clients a page."""
    found: list[str] = []
    after_id = 0
    while True:
        rows = await repository.page(session, after_id=after_id, limit=3, **filters)
        found += [row.phone for row in rows[:3]]
        if len(rows) <= 3:
            return found
        after_id = rows[2].id


# A page of one operator code, one tag or one of each reads this index in id order.
PAGES_INDEX = {
    ("operator_code",): "ix_clients_operator_code_pages",
    ("tag",): "ix_clients_tag_pages",
    ("operator_code", "tag"): "ix_clients_operator_code_tag_pages",
}
FILTERS = [{"operator_code": "916"}, {"tag": "vip"}, {"operator_code": "916", "tag": "vip"}]


async def _filtered_page(
    engine: AsyncEngine, session: AsyncSession, filters: dict[str, str], api: bool
) -> Statement:
    """The SELECT of a page of the console's search, or of the API's list, for the filters."""
    if api:
        lists = {
            "tags": [filters["tag"]] if "tag" in filters else [],
            "operator_codes": [filters["operator_code"]] if "operator_code" in filters else [],
        }
        statement = await the_select(
            engine, lambda: repository.page(session, after_id=10, limit=50, **lists)
        )
    else:
        statement = await the_select(
            engine,
            lambda: repository.search(session, after_id=10, after_phone="", limit=50, **filters),
        )
    await session.rollback()
    return statement


@pytest.mark.parametrize("api", [False, True], ids=["console", "api"])
@pytest.mark.parametrize("filters", FILTERS, ids=["code", "tag", "code-and-tag"])
async def test_sqlite_reads_a_page_of_one_code_or_tag_from_its_index(
    dialect: str, clean_db: AsyncEngine, session: AsyncSession, filters: dict[str, str], api: bool
) -> None:
    """A code read (operator_code, tag) and sorted every client with it, for each page."""
    if dialect != "sqlite":
        pytest.skip("SQLite's plan (PostgreSQL's: the next test)")
    plan = await sqlite_plan(clean_db, await _filtered_page(clean_db, session, filters, api))
    assert "TEMP B-TREE" not in plan, plan
    assert f"USING INDEX {PAGES_INDEX[tuple(sorted(filters))]} (" in plan, plan
    assert ">?)" in plan, plan  # from the cursor on


@pytest.mark.parametrize("api", [False, True], ids=["console", "api"])
@pytest.mark.parametrize("filters", FILTERS, ids=["code", "tag", "code-and-tag"])
async def test_postgresql_reads_a_page_of_one_code_or_tag_from_its_index(
    dialect: str, clean_db: AsyncEngine, session: AsyncSession, filters: dict[str, str], api: bool
) -> None:
    """Not the primary key filtered: that read every client before the first match.

    Sorting is made all but forbidden, so only an index in the page's order can serve it; in
    plain id order the primary key would, and this fails.
    """
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's plan (SQLite's: the previous test)")
    sql, parameters = await _filtered_page(clean_db, session, filters, api)
    async with clean_db.connect() as connection:
        await connection.execute(text("SET LOCAL enable_sort = off"))
        await connection.execute(text("SET LOCAL enable_seqscan = off"))
        [[document]] = (
            await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", parameters)
        ).all()
    plan = (document if isinstance(document, list) else json.loads(document))[0]["Plan"]
    assert plan["Node Type"] == "Limit", plan
    [read] = plan["Plans"]
    assert read["Node Type"] == "Index Scan", plan
    if len(filters) == 1:
        assert read["Index Name"] == PAGES_INDEX[tuple(filters)], plan
    else:  # either value's index, in the page's order, filtered by the other, will do
        assert read["Index Name"] in PAGES_INDEX.values(), plan
