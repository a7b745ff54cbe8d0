"""All SQL over clients."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    Insert,
    Row,
    Select,
    String,
    Table,
    bindparam,
    false,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from sms_sender import dialects
from sms_sender.audit import repository as audit_repository
from sms_sender.clients.models import PAGE_ORDER_SQL, Client, ClientFacetCount
from sms_sender.consent import repository as consent_repository
from sms_sender.consent.models import Suppression
from sms_sender.db import UTCDateTime


class PhoneInUse(Exception):
    """The phone already belongs to a client: the UNIQUE constraint refused the write."""


@dataclass(frozen=True)
class AddedClient:
    """A client just inserted, the id of its audit entry, and its phone's suppression entry."""

    row: Row[Any]
    audit_id: int
    suppression: Suppression | None


async def add(
    session: AsyncSession,
    values: Mapping[str, Any],
    *,
    phone_hash: str,
    audit_entry: Mapping[str, Any],
) -> AddedClient:
    """Insert a client and its audit entry, reading its phone's suppression entry on the way.

    A taken phone raises PhoneInUse and writes nothing (ON CONFLICT (phone) DO NOTHING: no
    SAVEPOINT, the transaction stays as it was). PostgreSQL does it all in one statement (the
    entry's INSERT in the WITH of the client's); SQLite in two, the suppression entry read by
    the client's RETURNING. Either way no ORM object, flush or separate lookup.
    """
    parameters = {
        **values,
        "phone_hash": phone_hash,
        **{f"audit_{name}": audit_entry[name] for name in audit_repository.ENTRY_COLUMNS},
    }
    chained = dialects.chains_inserts(session)
    insert = _insert_skipping_taken_phones(session)
    row = (await session.execute(_add_statement(insert, chained), parameters)).one_or_none()
    if row is None:
        raise PhoneInUse(f"phone {values['phone']} is taken")
    if chained:
        audit_id = row.audit_id
    else:
        audit_id = (
            await session.execute(_audit_statement(), parameters | {"audit_target_id": row.id})
        ).scalar_one()
    suppression = None
    if row.suppressed_at is not None:
        suppression = Suppression(
            phone_hash=phone_hash, opted_out_at=row.suppressed_at, source=row.suppression_source
        )
    return AddedClient(row, audit_id, suppression)


@cache
def _add_statement(insert: Insert, chained: bool) -> Executable:
    clients = Client.__table__
    new_client = insert.values(
        {c.name: bindparam(c.name, type_=c.type) for c in clients.c if c is not clients.c.id}
    )
    at, source = consent_repository.suppression_of(bindparam("phone_hash"))
    suppression = (at.label("suppressed_at"), source.label("suppression_source"))
    if not chained:
        return new_client.returning(*clients.c, *suppression)
    added = new_client.returning(*clients.c).cte("added")
    entry = audit_repository.entry_insert(added.c.id, added).cte("entry")
    return select(added, entry.c.id.label("audit_id"), *suppression).select_from(
        added.join(entry, true())
    )


@cache
def _audit_statement() -> Insert:
    return audit_repository.entry_insert(bindparam("audit_target_id", type_=BigInteger()))


async def set_consent(
    session: AsyncSession, client_id: int, columns: Mapping[str, Any]
) -> Row[Any]:
    """Set a client's consent columns and return its row (a new client on the suppression list)."""
    clients: Table = Client.__table__  # type: ignore[assignment]
    statement = (
        clients.update().where(clients.c.id == client_id).values(**columns).returning(*clients.c)
    )
    row: Row[Any] = (await session.execute(statement)).one()
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
    one_each = len(tags) <= 1 and len(operator_codes) <= 1
    statement = _page_statement(bool(tags), bool(operator_codes), one_each)
    values = {"after_id": after_id, "row_limit": limit + 1, "tags": tags, "codes": operator_codes}
    rows: Sequence[Row[Any]] = (await session.execute(statement, values)).all()
    return rows


@cache
def _page_statement(by_tag: bool, by_operator_code: bool, one_each: bool) -> Select[Any]:
    # Built once per filter shape: building a statement costs more than running the cached one.
    clients = Client.__table__.c
    statement = select(Client.__table__)
    if by_tag:
        statement = statement.where(clients.tag.in_(bindparam("tags", expanding=True)))
    if by_operator_code:
        statement = statement.where(clients.operator_code.in_(bindparam("codes", expanding=True)))
    order = _order_of_pages((by_tag or by_operator_code) and one_each)
    return (
        statement.where(order > bindparam("after_id")).order_by(order).limit(bindparam("row_limit"))
    )


def _order_of_pages(by_one_code_or_tag: bool) -> ColumnElement[int]:
    """The id; for a page of one operator code, one tag or one of each, spelled as their indexes.

    Such a page then reads its index from the cursor on. Several codes or tags keep the plain
    id (their ranges of the index are not in id order together; the primary key is, filtered).
    """
    clients = Client.__table__.c
    return literal_column(PAGE_ORDER_SQL, BigInteger()) if by_one_code_or_tag else clients.id


async def delete(session: AsyncSession, client: Client) -> None:
    """Delete the client (detach its reports first: reports.repository.detach_client)."""
    await session.delete(client)
    await session.flush()


async def facet_values(session: AsyncSession) -> dict[str, list[str]]:
    """Every value some client has, by facet (``tag``, ``operator_code``), in one statement."""
    values: dict[str, list[str]] = {}
    for facet, value in await session.execute(_FACET_VALUES):
        values.setdefault(facet, []).append(value)
    # Sorted here, not by ORDER BY: PostgreSQL's collation and SQLite's byte order disagree.
    return {facet: sorted(facet_values) for facet, facet_values in values.items()}


# Built once: building a statement costs more than running it (GET /tags).
_FACET_VALUES = (
    select(ClientFacetCount.facet, ClientFacetCount.value)
    .group_by(ClientFacetCount.facet, ClientFacetCount.value)
    .having(func.sum(ClientFacetCount.clients) > 0)
)


def _insert_skipping_taken_phones(session: AsyncSession, returning: tuple[Any, ...] = ()) -> Insert:
    """INSERT INTO clients … ON CONFLICT (phone) DO NOTHING."""
    # The Core table, not the ORM entity: no objects in the session, no ORM bulk machinery.
    return dialects.insert_ignoring_conflicts(session, Client.__table__, ("phone",), returning)


# A new client's columns as the CSV import gives them: phone, operator_code, tag, timezone.
NewClient = tuple[str, str, str | None, str]
_NEW_CLIENT_COLUMNS = {name: String() for name in ("phone", "operator_code", "tag", "timezone")}


async def insert_new(session: AsyncSession, rows: Sequence[NewClient], now: datetime) -> set[str]:
    """Insert the clients in one statement, skipping phones already taken; return those skipped.

    Every row gets ``now`` as created_at and updated_at. The rows travel as one JSON document
    (``dialects.given_rows``): the statement is the same for any count, and neither
    SQLAlchemy nor our timestamp type touches each row in Python (that was a quarter of an
    import's CPU). Only the phones that were taken come back (usually none), not every row
    inserted.

    On SQLite the counters' row trigger (four statements per client, a sixth of SQLite's work
    in an import) is dropped around the INSERT and the batch's tags and operator codes are
    added to the counters at once (``dialects.row_trigger_dropped`` says why that is safe);
    PostgreSQL's statement trigger counts the whole INSERT at once already.
    """
    if not rows:
        return set()
    async with dialects.row_trigger_dropped(session, _COUNTING_TRIGGER) as dropped:
        if not dropped:
            return await _insert_returning_taken(session, rows, now)
        taken = await _insert_on_sqlite(session, rows, now)
        made = rows if taken is None else _rows_made(rows, taken)
        if made:
            await _add_to_facet_counts(session, _facets_of(made))
    return taken or set()


# The counters' SQLite trigger that counts each client made (see insert_new).
_COUNTING_TRIGGER = "clients_counted_insert"
_FACET_COUNT_COLUMNS: dict[str, TypeEngine[Any]] = {
    "facet": String(),
    "value": String(),
    "clients": BigInteger(),
}


def _insert_from_given(session: AsyncSession, given: Select[Any], now: datetime) -> Insert:
    """INSERT INTO clients … SELECT the given rows with ``now`` … ON CONFLICT (phone) DO NOTHING."""
    stamp = bindparam("now", now, type_=UTCDateTime())
    return _insert_skipping_taken_phones(session).from_select(
        [*_NEW_CLIENT_COLUMNS, "created_at", "updated_at"],
        # The WHERE is SQLite's: without it, ON CONFLICT would parse as a join's ON.
        select(*given.selected_columns, stamp, stamp).where(true()),
    )


async def _insert_returning_taken(
    session: AsyncSession, rows: Sequence[NewClient], now: datetime
) -> set[str]:
    """PostgreSQL: one statement, whose INSERT's RETURNING is compared with the rows there.

    ``WITH given AS (…), added AS (INSERT … RETURNING phone) SELECT phone FROM given WHERE
    NOT EXISTS (… added …)``: the server sends back only the taken phones.
    """
    given_columns = dialects.given_rows(session, _NEW_CLIENT_COLUMNS, rows)
    given = select(*(value.label(name) for name, value in given_columns.items())).cte("given")
    added = (
        _insert_from_given(session, select(*given.c), now)
        .returning(Client.__table__.c.phone)
        .cte("added")
    )
    taken = select(given.c.phone).where(
        ~select(added.c.phone).where(added.c.phone == given.c.phone).exists()
    )
    return set((await session.scalars(taken)).all())


async def _insert_on_sqlite(
    session: AsyncSession, rows: Sequence[NewClient], now: datetime
) -> set[str] | None:
    """SQLite: the INSERT returns nothing; its count of rows says whether any phone was taken.

    None when every row given went in (the usual case), else the phones taken.

    SQLite allows no INSERT inside WITH. Only when fewer rows went in than were given are the
    new rows read back, as the ids above the largest before the INSERT: this transaction is
    the only writer (it dropped the counting trigger), so they are exactly its own.
    """
    clients = Client.__table__.c
    largest_id = await session.scalar(select(func.coalesce(func.max(clients.id), 0)))
    given = dialects.given_rows(session, _NEW_CLIENT_COLUMNS, rows)
    result = await session.execute(_insert_from_given(session, select(*given.values()), now))
    if result.rowcount == len(rows):  # type: ignore[attr-defined]
        return None
    added = await session.scalars(select(clients.phone).where(clients.id > largest_id))
    return {row[0] for row in rows}.difference(added.all())


def _rows_made(rows: Sequence[NewClient], taken: set[str]) -> list[NewClient]:
    """The rows that made a client, when some did not: each phone's first, unless taken."""
    # A phone given twice was inserted from its first row (the later one met the conflict).
    return list({row[0]: row for row in reversed(rows) if row[0] not in taken}.values())


def _facets_of(made: Sequence[NewClient]) -> list[tuple[str, str, int]]:
    """(facet, value, clients) for the rows inserted: what the row trigger would have added."""
    # map and itemgetter: a third of the CPU of generators over the rows.
    codes = Counter(map(itemgetter(1), made))
    tags = Counter(map(itemgetter(2), made))
    tags.pop(None, None)
    return [
        *(("operator_code", code, count) for code, count in codes.items()),
        *(("tag", tag, count) for tag, count in tags.items()),
    ]


async def _add_to_facet_counts(
    session: AsyncSession, counts: Sequence[tuple[str, str, int]]
) -> None:
    """Add each count to its key's rows, or make the key's row: as the row trigger does.

    Never a row beside an existing one: SQLite's triggers add to every row of a key, so a
    second row would be counted twice from then on. Two statements whatever the keys' number.
    """
    facet_counts: Table = ClientFacetCount.__table__  # type: ignore[assignment]
    given = dialects.given_rows(session, _FACET_COUNT_COLUMNS, counts)
    added = select(*(value.label(name) for name, value in given.items())).subquery("added")
    same_key = (facet_counts.c.facet == added.c.facet) & (facet_counts.c.value == added.c.value)
    await session.execute(
        facet_counts.update()
        .where(same_key)
        .values(clients=facet_counts.c.clients + added.c.clients)
    )
    await session.execute(
        facet_counts.insert().from_select(
            ["facet", "value", "clients"],
            select(added).where(~select(facet_counts.c.id).where(same_key).exists()),
        )
    )


async def search(
    session: AsyncSession,
    *,
    after_id: int,
    after_phone: str,
    limit: int,
    phone_prefix: str = "",
    tag: str = "",
    operator_code: str = "",
    timezone: str = "",
) -> Sequence[Row[Any]]:
    """Up to ``limit + 1`` clients matching every filter given (the console), keyset paged.

    In id order after ``after_id``, or in phone order after ``after_phone`` (phones are
    unique) when :func:`search_in_phone_order` says so. A phone prefix is a range of the phone
    index (a LIKE could use it on neither database: SQLite's is case-insensitive, PostgreSQL's
    needs the C collation).
    """
    clients = Client.__table__.c
    statement = select(Client.__table__)
    if phone_prefix:
        statement = statement.where(*_phone_prefix(clients.phone, phone_prefix))
    if search_in_phone_order(phone_prefix=phone_prefix, tag=tag):
        statement = statement.where(clients.phone > after_phone).order_by(clients.phone)
    else:
        order = _order_of_pages(bool(tag or operator_code))
        statement = statement.where(order > after_id).order_by(order)
    if tag:
        statement = statement.where(clients.tag == tag)
    if operator_code:
        statement = statement.where(clients.operator_code == operator_code)
    if timezone:
        statement = statement.where(clients.timezone == timezone)
    rows: Sequence[Row[Any]] = (await session.execute(statement.limit(limit + 1))).all()
    return rows


def search_in_phone_order(*, phone_prefix: str, tag: str, **other_filters: str) -> bool:
    """Whether :func:`search` pages these filters in phone order (else in id order).

    With a phone prefix the phone index, read in its order, gives a page at once however many
    clients the prefix matches; in id order a prefix nearly everyone has ("7") meant reading
    and sorting every match for each page. A tag's index is in id order already (its entries
    end with the rowid): with a tag, pages stay in id order and the prefix filters them.
    """
    return bool(phone_prefix) and not tag


def _phone_prefix(phone: ColumnElement[str], prefix: str) -> list[ColumnElement[bool]]:
    """Phones starting with ``prefix``: ``prefix <= phone < next`` when it is digits.

    ``next`` is the prefix plus one (7999 -> 8000): among strings of digits exactly those
    starting with the prefix lie between (digits sort alike in byte order and in collations).
    """
    if not prefix.isascii() or not prefix.isdigit():
        return [false()]  # phones are digits: none has it, and nothing need be read to say so
    bounds = [phone >= prefix]
    if prefix.strip("9"):
        upper = str(int(prefix) + 1).zfill(len(prefix))
        bounds.append(phone < upper)
    return bounds
