"""All SQL over reports. Set-based: no statement here loops over messages in Python."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Insert, and_, func, literal, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.clients.models import Client
from sms_sender.db import UTCDateTime
from sms_sender.mailings.models import Mailing
from sms_sender.reports.models import UNSENT_REPORT_STATUSES, Report, ReportStatus


def _insert_ignoring_duplicates(session: AsyncSession) -> Insert:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(Report).on_conflict_do_nothing(  # type: ignore[no-any-return]
        index_elements=[Report.mailing_id, Report.client_id]
    )


def matching_clients(operator_codes: Sequence[str], tags: Sequence[str]) -> list[object]:
    """The WHERE clauses of a mailing filter: AND across fields, OR inside one, empty = all."""
    clauses: list[object] = [true()]
    if operator_codes:
        clauses.append(Client.operator_code.in_(list(operator_codes)))
    if tags:
        clauses.append(Client.tag.in_(list(tags)))
    return clauses


async def materialise(
    session: AsyncSession,
    *,
    mailing_id: int,
    text: str,
    operator_codes: Sequence[str],
    tags: Sequence[str],
    now: datetime,
) -> int:
    """Create one pending report per matching client in a single INSERT … SELECT.

    Phone, text and time zone are copied, so later edits never rewrite history. Returns the
    number of reports created; a second call for the same mailing creates none (UNIQUE).
    """
    at_now = literal(now, UTCDateTime())
    rows = select(
        literal(mailing_id).label("mailing_id"),
        Client.id,
        Client.phone,
        literal(text).label("text"),
        Client.timezone,
        literal(ReportStatus.PENDING.value).label("status"),
        literal(0).label("attempts"),
        at_now.label("next_attempt_at"),
        at_now.label("created_at"),
        at_now.label("updated_at"),
    ).where(and_(*matching_clients(operator_codes, tags)))  # type: ignore[arg-type]
    statement = _insert_ignoring_duplicates(session).from_select(
        [
            "mailing_id",
            "client_id",
            "phone",
            "text",
            "timezone",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
            "updated_at",
        ],
        rows,
    )
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def cancel_pending_for_client(session: AsyncSession, client_id: int, now: datetime) -> int:
    """Cancel the reports not yet handed to a provider for a client about to be deleted."""
    result = await session.execute(
        update(Report)
        .where(Report.client_id == client_id, Report.status == ReportStatus.PENDING)
        .values(status=ReportStatus.CANCELLED, error="client deleted", updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def get(session: AsyncSession, report_id: int) -> Report | None:
    return await session.get(Report, report_id)


async def page(
    session: AsyncSession,
    *,
    mailing_id: int | None,
    status: ReportStatus | None,
    phone: str | None,
    after_id: int,
    limit: int,
) -> Sequence[Report]:
    """Up to ``limit + 1`` reports after ``after_id`` matching every filter given."""
    query = select(Report).where(Report.id > after_id)
    if mailing_id is not None:
        query = query.where(Report.mailing_id == mailing_id)
    if status is not None:
        query = query.where(Report.status == status)
    if phone is not None:
        query = query.where(Report.phone == phone)
    return (await session.scalars(query.order_by(Report.id).limit(limit + 1))).all()


async def count_by_status(
    session: AsyncSession, mailing_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """Reports per status of each given mailing, in one grouped query; absent = no reports."""
    if not mailing_ids:
        return {}
    rows = await session.execute(
        select(Report.mailing_id, Report.status, func.count())
        .where(Report.mailing_id.in_(list(mailing_ids)))
        .group_by(Report.mailing_id, Report.status)
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for mailing_id, status, count in rows:
        counts[mailing_id][status] = count
    return counts


async def count_by_mailing_and_status(
    session: AsyncSession,
) -> Sequence[tuple[int, str, str | None, int]]:
    """(mailing id, mailing status, report status, count) for every mailing, in id order.

    One statement: the reports are grouped first (the (mailing_id, status) index can answer that),
    then every mailing is joined to its groups, so a mailing without reports still appears,
    once, with a null report status.
    """
    groups = (
        select(
            Report.mailing_id,
            Report.status.label("report_status"),
            func.count().label("reports"),
        )
        .group_by(Report.mailing_id, Report.status)
        .subquery()
    )
    rows = await session.execute(
        select(Mailing.id, Mailing.status, groups.c.report_status, groups.c.reports)
        .outerjoin(groups, groups.c.mailing_id == Mailing.id)
        .order_by(Mailing.id)
    )
    return [
        (mailing_id, status, report_status, reports or 0)
        for mailing_id, status, report_status, reports in rows
    ]


async def cancel_unsent(session: AsyncSession, mailing_id: int, now: datetime) -> int:
    """Cancel the reports of a cancelled mailing not yet handed to a provider.

    Reports in ``sending`` are left to the worker holding them: it records what the provider
    answered, since the message may already be on its way.
    """
    return await _close_unsent(
        session, mailing_id, ReportStatus.CANCELLED, "mailing cancelled", now
    )


async def expire_unsent(session: AsyncSession, mailing_id: int, now: datetime) -> int:
    """Expire the reports of a mailing that reached end_at before they could be sent."""
    return await _close_unsent(
        session, mailing_id, ReportStatus.EXPIRED, "end_at reached before it could be sent", now
    )


async def _close_unsent(
    session: AsyncSession, mailing_id: int, status: ReportStatus, reason: str, now: datetime
) -> int:
    result = await session.execute(
        update(Report)
        .where(Report.mailing_id == mailing_id, Report.status.in_(UNSENT_REPORT_STATUSES))
        .values(status=status, error=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def make_waiting_due(session: AsyncSession, mailing_id: int, now: datetime) -> int:
    """Let first attempts put off to a later time (the old send window) be reconsidered now.

    Called when a mailing's send window changes, so a widened window takes effect at once;
    retries (attempts > 0) keep their backoff.
    """
    result = await session.execute(
        update(Report)
        .where(
            Report.mailing_id == mailing_id,
            Report.status == ReportStatus.PENDING,
            Report.attempts == 0,
            Report.next_attempt_at > now,
        )
        .values(next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
