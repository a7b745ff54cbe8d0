"""All SQL over clients."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Insert, Row, Select, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.clients.models import Client


class PhoneInUse(Exception):
    """The phone already belongs to a client: the UNIQUE constraint refused the write."""


async def add(session: AsyncSession, values: Mapping[str, Any]) -> Row[Any]:
    """Insert a client from its column values and return its row; a taken phone: PhoneInUse.

    One statement built once, INSERT … ON CONFLICT (phone) DO NOTHING RETURNING: no ORM object,
    flush, SAVEPOINT or second query, and a taken phone leaves the transaction as it was.
    """
    statement = _add_statement(session.get_bind().dialect.name)
    row: Row[Any] | None = (await session.execute(statement, dict(values))).one_or_none()
    if row is None:
        raise PhoneInUse(f"phone {values['phone']} is taken")
    return row


async def update(session: AsyncSession, client: Client, values: Mapping[str, Any]) -> None:
    """Set and write the values; a taken phone raises PhoneInUse and the client keeps its old ones.

    The change is made inside a SAVEPOINT so that the UNIQUE violation (the only constraint a
    valid client can break) rolls back just this write, not the caller's transaction. Relying
    on the constraint instead of a prior SELECT keeps two concurrent requests from both winning.
    """
    try:
        async with session.begin_nested():
            for column, value in values.items():
                setattr(client, column, value)
            await session.flush()
    except IntegrityError as error:
        raise PhoneInUse(str(error.orig)) from error


async def get(session: AsyncSession, client_id: int) -> Client | None:
    return await session.get(Client, client_id)


async def id_by_phone(session: AsyncSession, phone: str) -> int | None:
    return await session.scalar(select(Client.id).where(Client.phone == phone))


async def page(
    session: AsyncSession,
    *,
    after_id: int,
    limit: int,
    tags: Collection[str] = (),
    operator_codes: Collection[str] = (),
) -> Sequence[Row[Any]]:
    """Up to ``limit + 1`` clients after ``after_id`` having one of the tags and operator codes.

    An empty collection does not filter. The extra row tells the caller a next page exists.
    Rows, not ORM objects: a page is only read and sent, and rows cost a fraction to load.
    """
    statement = _page_statement(bool(tags), bool(operator_codes))
    values = {"after_id": after_id, "row_limit": limit + 1, "tags": tags, "codes": operator_codes}
    rows: Sequence[Row[Any]] = (await session.execute(statement, values)).all()
    return rows


@cache
def _page_statement(by_tag: bool, by_operator_code: bool) -> Select[Any]:
    # Built once per filter shape: building a statement costs more than running the cached one.
    clients = Client.__table__.c
    statement = select(Client.__table__).where(clients.id > bindparam("after_id"))
    if by_tag:
        statement = statement.where(clients.tag.in_(bindparam("tags", expanding=True)))
    if by_operator_code:
        statement = statement.where(clients.operator_code.in_(bindparam("codes", expanding=True)))
    return statement.order_by(clients.id).limit(bindparam("row_limit"))


async def delete(session: AsyncSession, client: Client) -> None:
    """Delete the client (detach its reports first: reports.repository.detach_client)."""
    await session.delete(client)
    await session.flush()


async def distinct_tags(session: AsyncSession) -> list[str]:
    query = select(Client.tag).where(Client.tag.is_not(None)).distinct()
    # Sorted here, not by ORDER BY: PostgreSQL's collation and SQLite's byte order disagree.
    return sorted(tag for tag in await session.scalars(query) if tag is not None)


async def distinct_operator_codes(session: AsyncSession) -> list[str]:
    return sorted(await session.scalars(select(Client.operator_code).distinct()))


@cache
def _insert_skipping_taken_phones(dialect: str) -> Insert:
    """INSERT INTO clients … ON CONFLICT (phone) DO NOTHING in the dialect's own syntax."""
    module = postgresql if dialect == "postgresql" else sqlite
    # The Core table, not the ORM entity: no objects in the session, no ORM bulk machinery.
    statement = module.insert(Client.__table__).on_conflict_do_nothing(index_elements=["phone"])
    return statement  # type: ignore[no-any-return]


@cache
def _add_statement(dialect: str) -> Insert:
    return _insert_skipping_taken_phones(dialect).returning(*Client.__table__.c)


async def insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the rows in one statement, skipping phones already taken; return those inserted.

    Each row holds every column but id. Keep ``len(rows) * 6`` under SQLite's limit of 32,766
    bound parameters.
    """
    if not rows:
        return set()
    # Executed as "insertmanyvalues": compiled once, sent as one multi-row INSERT per page.
    one_page = {"insertmanyvalues_page_size": len(rows)}
    statement = _insert_skipping_taken_phones(session.get_bind().dialect.name)
    result = await session.execute(
        statement.returning(Client.__table__.c.phone), rows, execution_options=one_page
    )
    return set(result.scalars())
