"""A worker's leases: renewed while it holds reports, and dead workers' sends reclaimed.

A live worker renews the leases on everything it holds every third of a lease, so an expired
lease means its worker died (or lost track of the report). Every half lease the worker looks
for ``sending`` reports with such a lease and takes them over (:func:`repository.reclaim`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.clock import Clock
from sms_sender.dialects import begin_write
from sms_sender.dispatch import repository
from sms_sender.providers.base import Provider

_log = structlog.get_logger(__name__)


class Leases:
    """When to renew this worker's leases and when to reclaim others', and doing it."""

    def __init__(
        self,
        *,
        database: AsyncEngine,
        clock: Clock,
        owner: str,
        provider: Provider,
        lease: timedelta,
        reclaim_interval: timedelta | None,
    ) -> None:
        self._database = database
        self._clock = clock
        self._owner = owner
        self._lease = lease
        # None: half the lease, so a send is taken over within 1.5 leases of its worker's death.
        self._reclaim_interval = reclaim_interval or lease / 2
        # An idempotent provider de-duplicates: its abandoned sends may go again.
        self._resendable = provider.name if provider.idempotent else None
        self._next_renewal_at = clock.now() + lease / 3
        self._next_reclaim_at = clock.now()

    def renewal_due(self) -> bool:
        return self._clock.now() >= self._next_renewal_at

    def reclaim_due(self) -> bool:
        return self._clock.now() >= self._next_reclaim_at

    async def renew(self, report_ids: Sequence[int]) -> None:
        """Extend the leases on the reports this worker holds (waiting, in flight, answered)."""
        now = self._clock.now()
        async with begin_write(self._database) as connection:
            await repository.renew(
                connection, report_ids, owner=self._owner, lease_until=now + self._lease
            )
        self._next_renewal_at = now + self._lease / 3

    async def reclaim(self, sending: Sequence[int]) -> None:
        """Take over ``sending`` reports abandoned by dead workers; ``sending``: this one's."""
        now = self._clock.now()
        async with begin_write(self._database) as connection:
            reclaimed = await repository.reclaim(
                connection, now=now, in_flight=sending, resendable_provider=self._resendable
            )
        self._next_reclaim_at = now + self._reclaim_interval
        for report in reclaimed:
            _log.warning(
                "reclaimed a send abandoned by a stopped worker",
                mailing_id=report.mailing_id,
                report_id=report.report_id,
                client_id=report.client_id,
                status=report.status,
            )
