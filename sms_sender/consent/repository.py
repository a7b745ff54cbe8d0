"""All SQL over consent: the clients' consent columns, their audit history, the suppression list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    String,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import dialects
from sms_sender.clients.models import Client
from sms_sender.consent.models import ConsentEvent, Suppression, SuppressionKey

DEFAULT_KEY_NAME = "default"


async def stored_key(session: AsyncSession) -> str | None:
    """The suppression key the migration made for this database."""
    return await session.scalar(
        select(SuppressionKey.value).where(SuppressionKey.name == DEFAULT_KEY_NAME)
    )


async def add_events(session: AsyncSession, events: Sequence[Mapping[str, Any]]) -> None:
    """Append audit entries (one multi-row INSERT)."""
    if events:
        await session.execute(insert(ConsentEvent), [dict(event) for event in events])


async def events_page(
    session: AsyncSession, client_id: int, *, after_id: int, limit: int
) -> Sequence[ConsentEvent]:
    """Up to ``limit + 1`` of the client's audit entries after ``after_id``, oldest first."""
    query = (
        select(ConsentEvent)
        .where(ConsentEvent.client_id == client_id, ConsentEvent.id > after_id)
        .order_by(ConsentEvent.id)
        .limit(limit + 1)
    )
    return (await session.scalars(query)).all()


async def latest_events(
    session: AsyncSession, client_id: int, *, limit: int
) -> Sequence[ConsentEvent]:
    """The client's ``limit`` newest audit entries, newest first (the (client_id, id) index)."""
    query = (
        select(ConsentEvent)
        .where(ConsentEvent.client_id == client_id)
        .order_by(ConsentEvent.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def ids_by_phone(session: AsyncSession, phones: Sequence[str]) -> dict[str, int]:
    if not phones:
        return {}
    rows = await session.execute(
        select(Client.phone, Client.id).where(Client.phone.in_(list(phones)))
    )
    return {phone: client_id for phone, client_id in rows.all()}  # noqa: C416


async def opt_out(
    session: AsyncSession, client_ids: Sequence[int], *, at: datetime, source: str | None
) -> list[tuple[int, str]]:
    """Opt out those of the clients not opted out yet; their (id, phone)."""
    if not client_ids:
        return []
    rows = await session.execute(
        update(Client)
        .where(Client.id.in_(list(client_ids)), Client.opted_out_at.is_(None))
        .values(opted_out_at=at, opt_out_source=source, updated_at=at)
        .returning(Client.id, Client.phone)
        .execution_options(synchronize_session=False)
    )
    return [(client_id, phone) for client_id, phone in rows]


async def suppression_list_is_empty(session: AsyncSession) -> bool:
    """Whether no phone is on the suppression list (one index entry read at most)."""
    return await session.scalar(select(Suppression.phone_hash).limit(1)) is None


async def suppressions(session: AsyncSession, hashes: Sequence[str]) -> dict[str, Suppression]:
    """The suppression entries among the given phone hashes.

    The hashes travel as one parameter (``dialects.given_rows``): an ``IN (…)`` list of a
    batch's thousand hashes was rendered bind by bind on every call, a third of a CSV import's
    CPU.
    """
    if not hashes:
        return {}
    given = dialects.given_rows(session, {"phone_hash": String()}, [(h,) for h in hashes])
    found = await session.scalars(
        select(Suppression).where(Suppression.phone_hash.in_(select(given["phone_hash"])))
    )
    return {entry.phone_hash: entry for entry in found}


def suppression_of(phone_hash: ColumnElement[str]) -> tuple[ScalarSelect[Any], ScalarSelect[Any]]:
    """The suppression entry of a phone hash as two columns for another statement: when the
    phone opted out and where from (both null when it is not on the list)."""
    entries = Suppression.__table__.c
    return tuple(  # type: ignore[return-value]
        select(column).where(entries.phone_hash == phone_hash).scalar_subquery()
        for column in (entries.opted_out_at, entries.source)
    )


async def suppress(
    session: AsyncSession, hashes: Sequence[str], *, at: datetime, source: str | None
) -> None:
    """Add suppression entries; a hash already listed keeps its first entry."""
    if not hashes:
        return
    statement = dialects.insert_ignoring_conflicts(session, Suppression, ("phone_hash",))
    await session.execute(
        statement, [{"phone_hash": h, "opted_out_at": at, "source": source} for h in hashes]
    )


async def unsuppress(session: AsyncSession, phone_hash: str) -> None:
    await session.execute(delete(Suppression).where(Suppression.phone_hash == phone_hash))


async def opt_out_by_phone(
    session: AsyncSession, opt_outs: Sequence[tuple[str, datetime, str | None]]
) -> dict[str, int]:
    """Opt out the clients with these phones, each at its own time; their ids by phone."""
    if not opt_outs:
        return {}
    table: Table = Client.__table__  # type: ignore[assignment]
    clients = table.c
    # The Core table: an executemany UPDATE keyed by phone, not the ORM's by-primary-key one.
    await session.execute(
        update(table)
        .where(clients.phone == bindparam("by_phone"), clients.opted_out_at.is_(None))
        .values(opted_out_at=bindparam("at"), opt_out_source=bindparam("source")),
        [{"by_phone": phone, "at": at, "source": source} for phone, at, source in opt_outs],
    )
    return await ids_by_phone(session, [phone for phone, _, _ in opt_outs])


async def detach_events(session: AsyncSession, client_id: int) -> None:
    """Keep a leaving client's audit entries without its id (see ConsentEvent.client_id)."""
    await session.execute(
        update(ConsentEvent)
        .where(ConsentEvent.client_id == client_id)
        .values(client_id=None)
        .execution_options(synchronize_session=False)
    )


async def clients_by_phone(session: AsyncSession, phones: Sequence[str]) -> Sequence[Client]:
    if not phones:
        return []
    return (await session.scalars(select(Client).where(Client.phone.in_(list(phones))))).all()


async def set_consent_states(
    session: AsyncSession, states: Mapping[int, Mapping[str, Any]]
) -> None:
    """Write each client's consent columns (an executemany keyed by id)."""
    if not states:
        return
    await session.execute(
        update(Client), [{"id": client_id, **columns} for client_id, columns in states.items()]
    )
