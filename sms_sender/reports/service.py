"""Reading reports; the engine, not this module, changes their status.

Counting them per mailing is sms_sender.mailings.stats: a mailing owns its reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import reasons
from sms_sender.errors import NotFound
from sms_sender.reports import repository
from sms_sender.reports.models import Report, ReportStatus


async def get(session: AsyncSession, report_id: int) -> Report:
    report = await repository.get(session, report_id)
    if report is None:
        raise NotFound.because(reasons.REPORT_NOT_FOUND, report_id=report_id)
    return report


async def page(
    session: AsyncSession,
    *,
    mailing_id: int | None,
    status: ReportStatus | None,
    phone: str | None,
    after_id: int,
    limit: int,
) -> Sequence[Row[Any]]:
    return await repository.page(
        session, mailing_id=mailing_id, status=status, phone=phone, after_id=after_id, limit=limit
    )
