"""Heartbeats of live workers, and the take-over of a dead worker's leases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender.dispatch.models import WorkerHeartbeat
from sms_sender.dispatch.repository._rows import reports
from sms_sender.reports.models import ReportStatus

heartbeats: Table = WorkerHeartbeat.__table__  # type: ignore[assignment]


async def beat(connection: AsyncConnection, worker_id: str, *, now: datetime) -> None:
    """Count one more beat of ``worker_id`` (its row is made on the first)."""
    result = await connection.execute(
        update(heartbeats)
        .where(heartbeats.c.worker_id == worker_id)
        .values(beats=heartbeats.c.beats + 1, last_seen_at=now)
    )
    if result.rowcount == 0:
        await connection.execute(
            insert(heartbeats).values(
                worker_id=worker_id, beats=1, started_at=now, last_seen_at=now
            )
        )


async def beats(connection: AsyncConnection) -> dict[str, int]:
    """Every registered worker and its beat count."""
    rows = await connection.execute(select(heartbeats.c.worker_id, heartbeats.c.beats))
    return {str(worker_id): int(count) for worker_id, count in rows}


async def last_seen(connection: AsyncConnection, worker_id: str) -> datetime | None:
    """When ``worker_id`` last beat, by its own clock; None if it is not registered."""
    seen: datetime | None = await connection.scalar(
        select(heartbeats.c.last_seen_at).where(heartbeats.c.worker_id == worker_id)
    )
    return seen


async def forget(connection: AsyncConnection, worker_ids: Sequence[str]) -> None:
    """Remove workers that stopped (or died and were taken over)."""
    if worker_ids:
        await connection.execute(
            delete(heartbeats).where(heartbeats.c.worker_id.in_(list(worker_ids)))
        )


async def release_claims_of(
    connection: AsyncConnection, owners: Sequence[str], *, now: datetime
) -> int:
    """Give back the leases dead ``owners`` held on reports they never handed over."""
    if not owners:
        return 0
    result = await connection.execute(
        update(reports)
        .where(reports.c.status == ReportStatus.PENDING, reports.c.lease_owner.in_(list(owners)))
        .values(lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount)
