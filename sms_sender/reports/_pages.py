"""Pages of reports (GET /reports, the console's mailing page): keyset pages in id order that
read about a page from an index at any depth and size, whatever the filters.

Split from :mod:`sms_sender.reports.repository`, which re-exports :func:`page`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Select,
    Table,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.reports.models import (
    PAGE_ORDER_SQL,
    ClientFormerPhone,
    MailingReportCount,
    Report,
    ReportStatus,
)

_reports: Table = Report.__table__  # type: ignore[assignment]


async def page(
    session: AsyncSession,
    *,
    mailing_id: int | None,
    status: ReportStatus | None,
    phone: str | None,
    after_id: int,
    limit: int,
) -> Sequence[Row[Any]]:
    """Up to ``limit + 1`` reports after ``after_id`` matching every filter given, in id order.

    Every shape without a phone reads about a page from an index in id order, at any depth and
    size (a plan test holds it): ``(status, id)``, and for a mailing
    ``ix_reports_mailing_pages`` status by status (:func:`_first_pages`). A phone's reports
    are its clients' (one per mailing) and deleted clients' (:func:`_of_phone`). Pending
    reports without a mailing come from there too, mailing by mailing: PostgreSQL's
    ``(status, id)`` leaves them out (a fan-out makes a million), and they are only in the
    few mailings still sending, which the counters name. Rows of the columns a page shows,
    not ORM objects: a page is only read and sent.
    """
    if phone is None and mailing_id is not None:
        statuses = tuple(ReportStatus) if status is None else (status,)
        return await _first_pages(session, [mailing_id], statuses, after_id=after_id, limit=limit)
    if phone is None and status == ReportStatus.PENDING:
        sending = await _mailings_with(session, ReportStatus.PENDING)
        return await _first_pages(session, sending, (status,), after_id=after_id, limit=limit)
    conditions: list[ColumnElement[bool]] = [Report.id > after_id]
    if mailing_id is not None:
        conditions.append(Report.mailing_id == mailing_id)
    if status is not None:
        # Written into the statement: PostgreSQL takes its (status, id) index, which has every
        # status but pending, only for a status it can see when it plans.
        conditions.append(Report.status == literal(status.value, literal_execute=True))
    if phone is not None:
        conditions = [Report.id.in_(_of_phone(phone, conditions, limit + 1))]
    query = select(*_PAGE_COLUMNS).where(*conditions).order_by(Report.id).limit(limit + 1)
    rows: Sequence[Row[Any]] = (await session.execute(query)).all()
    return rows


# The clients table as far as a phone's reports need it: reports sits below clients in the
# domains' layers, so it names the table rather than importing its model.
_clients = table("clients", column("id"), column("phone"))


def _of_phone(phone: str, conditions: list[ColumnElement[bool]], row_limit: int) -> Select[Any]:
    """The first ``row_limit`` ids, under the conditions, of the reports made under this phone.

    A report's phone is its client's at the fan-out: the reports of the client that has the
    phone now and of those that had it before (``client_former_phones``), each read through the
    unique (client_id, mailing_id) index, one per mailing; and those of deleted clients
    (``ix_reports_phone``, which holds only these: a fan-out writes no entry there). The phone
    is compared too, for a client's reports made under another of its phones.
    """
    owners = union_all(
        select(_clients.c.id).where(_clients.c.phone == phone),
        select(ClientFormerPhone.client_id).where(ClientFormerPhone.phone == phone),
    )
    # Ordered by id as an expression: no index gives that order, so no plan walks the primary
    # key hoping to meet the phone's few reports early (PostgreSQL did, on a small table, in
    # a full test run); the owners' reports are read through the unique index and sorted.
    parts = [
        select(Report.id)
        .where(whose, Report.phone == phone, *conditions)
        .order_by(literal_column(PAGE_ORDER_SQL))
        .limit(row_limit)
        .subquery()
        for whose in (Report.client_id.in_(owners), Report.client_id.is_(None))
    ]
    return select(union_all(*(select(part.c.id) for part in parts)).subquery().c.id)


# What a page shows of a report (ReportRead): not its lease or time zone.
_PAGE_COLUMNS = tuple(
    shown
    for shown in _reports.c
    if shown.name not in ("timezone", "lease_owner", "lease_expires_at")
)


async def _mailings_with(session: AsyncSession, status: ReportStatus) -> list[int]:
    """The mailings that have reports in ``status``, from the counters (exact, and small)."""
    mailing_ids = await session.scalars(
        select(MailingReportCount.mailing_id)
        .where(MailingReportCount.status == status)
        .group_by(MailingReportCount.mailing_id)
        .having(func.sum(MailingReportCount.reports) > 0)
    )
    return list(mailing_ids)


async def _first_pages(
    session: AsyncSession,
    mailing_ids: Sequence[int],
    statuses: tuple[ReportStatus, ...],
    *,
    after_id: int,
    limit: int,
) -> Sequence[Row[Any]]:
    """The first ``limit + 1`` reports after ``after_id`` of these mailings in these statuses."""
    if not mailing_ids:
        return []
    values: dict[str, int] = {f"mailing_id_{n}": value for n, value in enumerate(mailing_ids)}
    values |= {"after_id": after_id, "row_limit": limit + 1}
    rows: Sequence[Row[Any]] = (
        await session.execute(_first_pages_of(len(mailing_ids), statuses), values)
    ).all()
    return rows


@lru_cache(maxsize=256)
def _first_pages_of(mailings: int, statuses: tuple[ReportStatus, ...]) -> Select[Any]:
    """The first ``row_limit`` reports after ``after_id`` of some mailings in these statuses.

    One status of one mailing is in id order in ``ix_reports_mailing_pages``, so each pair
    gives its first ``row_limit`` from there at once, and the first ``row_limit`` of those few
    are the page's, whatever the mailings' size: one statement. Its order is the index's own
    expression, which no other index has, so neither planner can take one that is in id order
    but not by mailing. A mailing's page asks every status: reports hold only these. Built once
    per shape: building these subqueries cost more than running them.
    """
    order: ColumnElement[int] = literal_column(PAGE_ORDER_SQL)
    row_limit: BindParameter[int] = bindparam("row_limit")
    firsts = [
        select(Report.id)
        .where(
            Report.mailing_id == bindparam(f"mailing_id_{n}"),
            Report.status == status,
            order > bindparam("after_id"),
        )
        .order_by(order)
        .limit(row_limit)
        .subquery()
        for n in range(mailings)
        for status in statuses
    ]
    ids = union_all(*(select(first.c.id) for first in firsts)).subquery()
    return (
        select(*_PAGE_COLUMNS)
        .where(Report.id.in_(select(ids.c.id)))
        .order_by(Report.id)
        .limit(row_limit)
    )
