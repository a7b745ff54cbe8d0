"""A mailing's fan-out: one report per matching client, made by one INSERT … SELECT over clients.

Also the count the preview shows, over the same filter and the same consent rule. The lock that
orders a fan-out with a client's delete is the reports repository's (see its docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, case, func, insert, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.clients.models import Client
from sms_sender.consent.rules import MailingPurpose, SkipReason, excluded_for, exclusion_reason
from sms_sender.db import UTCDateTime
from sms_sender.reports import repository as reports_repository
from sms_sender.reports.models import Report, ReportStatus


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
    purpose: MailingPurpose,
    now: datetime,
) -> int:
    """Create one report per matching client in a single INSERT … SELECT.

    A client the mailing may not go to (sms_sender.consent.rules) gets a ``skipped`` report
    with the reason in ``error``, the others a ``pending`` one: every matching client is
    accounted for. Phone, text and time zone are copied, so later edits never rewrite history.
    Returns the number of reports created. Called once per mailing, by the transaction that
    starts it; a second call would fail on the UNIQUE (client_id, mailing_id) rather than make
    a duplicate. (No ON CONFLICT DO NOTHING: its speculative insertion cost a third of the
    statement.)
    """
    at_now = literal(now, UTCDateTime())
    reason = exclusion_reason(purpose)
    status = case(
        (reason.is_(None), literal(ReportStatus.PENDING.value)),
        else_=literal(ReportStatus.SKIPPED.value),
    )
    rows = select(
        literal(mailing_id).label("mailing_id"),
        Client.id,
        Client.phone,
        literal(text).label("text"),
        Client.timezone,
        status.label("status"),
        reason.label("error"),
        literal(0).label("attempts"),
        at_now.label("next_attempt_at"),
        at_now.label("created_at"),
        at_now.label("updated_at"),
    ).where(and_(*matching_clients(operator_codes, tags)))  # type: ignore[arg-type]
    statement = insert(Report).from_select(
        [
            "mailing_id",
            "client_id",
            "phone",
            "text",
            "timezone",
            "status",
            "error",
            "attempts",
            "next_attempt_at",
            "created_at",
            "updated_at",
        ],
        rows,
    )
    # Before the INSERT, not in it: its snapshot must be taken once the lock is ours.
    await reports_repository.hold_fan_out_lock(session)
    async with reports_repository.counted_at_the_end(session):
        result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def count_matching(
    session: AsyncSession,
    *,
    operator_codes: Sequence[str],
    tags: Sequence[str],
    purpose: MailingPurpose,
) -> tuple[int, dict[SkipReason, int]]:
    """How many clients the filter matches, and how many of them a fan-out would skip, by why.

    One aggregate over the same filter and the same rule as :func:`materialise`.
    """
    totals = [func.count()] + [
        func.coalesce(func.sum(case((excluded_for(purpose, reason), 1), else_=0)), 0)
        for reason in SkipReason
    ]
    row = (
        await session.execute(
            select(*totals).where(and_(*matching_clients(operator_codes, tags)))  # type: ignore[arg-type]
        )
    ).one()
    matching, *skipped = (int(value) for value in row)
    return matching, dict(zip(SkipReason, skipped, strict=True))
