"""The console's client search: keyset pages that cost a page whatever the filter matches."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sms_sender.clients import repository
from tests.arrange import Arrange, ClientSpec
from tests.plans import sqlite_plan, the_select

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
