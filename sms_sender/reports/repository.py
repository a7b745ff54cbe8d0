"""All SQL over reports. Set-based: no statement here loops over messages in Python."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Insert, and_, literal, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.clients.models import Client
from sms_sender.db import UTCDateTime
from sms_sender.reports.models import Report, ReportStatus


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
