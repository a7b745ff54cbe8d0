"""All SQL over clients."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.clients.models import Client


class PhoneInUse(Exception):
    """The phone already belongs to a client: the UNIQUE constraint refused the write."""


async def add(session: AsyncSession, client: Client) -> Client:
    """Insert the client; a taken phone raises PhoneInUse and leaves the session usable."""
    try:
        # Added inside the SAVEPOINT, so rolling it back also takes the client out of the session.
        async with session.begin_nested():
            session.add(client)
            await session.flush()
    except IntegrityError as error:
        raise PhoneInUse(str(error.orig)) from error
    return client


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
) -> Sequence[Client]:
    """Up to ``limit + 1`` clients after ``after_id`` having one of the tags and operator codes.

    An empty collection does not filter. The extra row tells the caller a next page exists.
    """
    query = select(Client).where(Client.id > after_id)
    if tags:
        query = query.where(Client.tag.in_(tags))
    if operator_codes:
        query = query.where(Client.operator_code.in_(operator_codes))
    return (await session.scalars(query.order_by(Client.id).limit(limit + 1))).all()


async def delete(session: AsyncSession, client: Client) -> None:
    """Delete the client; the database sets its reports' client_id to NULL (ON DELETE SET NULL)."""
    await session.delete(client)
    await session.flush()


async def distinct_tags(session: AsyncSession) -> list[str]:
    query = select(Client.tag).where(Client.tag.is_not(None)).distinct()
    # Sorted here, not by ORDER BY: PostgreSQL's collation and SQLite's byte order disagree.
    return sorted(tag for tag in await session.scalars(query) if tag is not None)


async def distinct_operator_codes(session: AsyncSession) -> list[str]:
    return sorted(await session.scalars(select(Client.operator_code).distinct()))


def _insert_skipping_taken_phones(session: AsyncSession) -> Insert:
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # The Core table, not the ORM entity: a bulk insert needs no objects in the session.
    statement = module.insert(Client.__table__).on_conflict_do_nothing(index_elements=["phone"])
    return statement.returning(Client.__table__.c.phone)  # type: ignore[no-any-return]


async def insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the rows in one statement, skipping phones already taken; return those inserted.

    Each row holds every column but id. Keep ``len(rows) * 6`` under SQLite's limit of 32,766
    bound parameters.
    """
    if not rows:
        return set()
    # Executed as "insertmanyvalues": compiled once, sent as one multi-row INSERT per page.
    one_page = {"insertmanyvalues_page_size": len(rows)}
    result = await session.execute(
        _insert_skipping_taken_phones(session), rows, execution_options=one_page
    )
    return set(result.scalars())
