"""The delivery poller's statements: reports awaiting a delivery status, and their answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, String, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender.dispatch.repository._rows import reports, update_each
from sms_sender.reports.models import ReportStatus


@dataclass(frozen=True, slots=True)
class AwaitingDelivery:
    """A report accepted by a provider whose delivery to the phone is not yet known."""

    id: int
    mailing_id: int
    client_id: int | None
    provider_message_id: str
    sent_at: datetime


async def awaiting_delivery(
    connection: AsyncConnection,
    *,
    provider: str,
    sent_since: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[AwaitingDelivery]:
    """A page of ``sent`` reports of ``provider``, in (sent_at, id) order after ``after``."""
    query = select(
        reports.c.id,
        reports.c.mailing_id,
        reports.c.client_id,
        reports.c.provider_message_id,
        reports.c.sent_at,
    ).where(
        reports.c.status == ReportStatus.SENT,
        reports.c.provider == provider,
        reports.c.sent_at >= sent_since,
        reports.c.provider_message_id.is_not(None),
    )
    if after is not None:
        query = query.where(tuple_(reports.c.sent_at, reports.c.id) > tuple_(*after))
    rows = await connection.execute(query.order_by(reports.c.sent_at, reports.c.id).limit(limit))
    return [AwaitingDelivery(*row) for row in rows]


async def record_delivery(
    connection: AsyncConnection, statuses: Mapping[int, ReportStatus], *, now: datetime
) -> int:
    """Move ``sent`` reports to ``delivered`` / ``undelivered`` as their provider reported."""
    return await update_each(
        connection,
        {"id": BigInteger(), "status": String()},
        [(report_id, status.value) for report_id, status in statuses.items()],
        lambda row: {"status": row["status"], "updated_at": now},
        guard=[reports.c.status == ReportStatus.SENT],
    )
