"""Test data for mailings and reports: clients arranged directly, the rest through the API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.models import Client, Report, ReportStatus


async def add_clients(
    session: AsyncSession, now: datetime, *clients: tuple[str, str, str | None]
) -> list[Client]:
    """Clients from (phone, operator_code, tag), committed so the API sees them."""
    rows = [
        Client(
            phone=phone,
            operator_code=operator_code,
            tag=tag,
            timezone="Europe/Moscow",
            created_at=now,
            updated_at=now,
        )
        for phone, operator_code, tag in clients
    ]
    session.add_all(rows)
    await session.commit()
    return rows


async def add_message(client: httpx.AsyncClient, text: str = "Winter sale -20%") -> int:
    response = await client.post("/api/v1/messages", json={"text": text})
    assert response.status_code == 201, response.text
    message_id: int = response.json()["id"]
    return message_id


def iso(moment: datetime) -> str:
    return moment.isoformat()


def mailing_body(
    message_id: int,
    now: datetime,
    *,
    starts_in: timedelta = timedelta(0),
    lasts: timedelta = timedelta(hours=2),
    **fields: Any,
) -> dict[str, Any]:
    """A valid creation body starting ``starts_in`` after now; ``fields`` override any key."""
    start_at = now + starts_in
    body: dict[str, Any] = {
        "start_at": iso(start_at),
        "end_at": iso(start_at + lasts),
        "message_id": message_id,
        "filter": {},
    }
    return body | fields


async def create_mailing(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/mailings", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def reports_of(session: AsyncSession, mailing_id: int) -> list[Report]:
    """The mailing's reports as stored now, in id order."""
    session.expire_all()
    query = select(Report).where(Report.mailing_id == mailing_id).order_by(Report.id)
    reports = list((await session.scalars(query)).all())
    # End the transaction: on SQLite it holds the write lock the app and engine also need.
    await session.commit()
    return reports


async def set_report_status(
    session: AsyncSession, report_ids: Iterable[int], status: ReportStatus, **values: Any
) -> None:
    """Put reports in a status as the engine would, committed."""
    await session.execute(
        update(Report).where(Report.id.in_(list(report_ids))).values(status=status, **values)
    )
    await session.commit()
