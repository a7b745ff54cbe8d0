"""Delivery tracking: asks a provider that can tell (SMS Aero) whether ``sent`` reached the phone.

Every ``interval`` it walks the ``sent`` reports of its provider from the last ``horizon``
(keyset pages of ``batch_size``), asks the provider about each page in one call, and moves the
answered ones to ``delivered`` or ``undelivered`` with one statement per page. Reports still in
transit stay ``sent`` and are asked about again next round; after ``horizon`` they are no
longer asked about (a gateway forgets old messages too). Several workers may poll at once:
the update only moves reports that are still ``sent``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender import metrics
from sms_sender.clock import Clock
from sms_sender.db import begin_write, read_only
from sms_sender.dispatch import repository
from sms_sender.dispatch.repository import AwaitingDelivery
from sms_sender.dispatch.wakeups import set_when
from sms_sender.providers.base import DeliveryStatus, DeliveryTracking
from sms_sender.reports.models import ReportStatus

_log = structlog.get_logger(__name__)

_FINAL = {
    DeliveryStatus.DELIVERED: ReportStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED: ReportStatus.UNDELIVERED,
}


class DeliveryPoller:
    """Polls ``tracker`` for the delivery of messages sent through provider ``provider_name``."""

    def __init__(
        self,
        *,
        database: AsyncEngine,
        clock: Clock,
        tracker: DeliveryTracking,
        provider_name: str,
        batch_size: int,
        interval: timedelta = timedelta(seconds=30),
        horizon: timedelta = timedelta(days=2),
    ) -> None:
        self._database = database
        self._reader = read_only(database)
        self._clock = clock
        self._tracker = tracker
        self._provider_name = provider_name
        self._batch_size = batch_size
        self._interval = interval
        self._horizon = horizon

    async def run(self, stop: asyncio.Event) -> None:
        wake = asyncio.Event()
        stop_watch = asyncio.create_task(set_when(stop, wake))
        try:
            while not stop.is_set():
                round_started_at = self._clock.now()
                await self.poll()
                await self._clock.sleep_until(round_started_at + self._interval, wake)
        finally:
            stop_watch.cancel()

    async def poll(self) -> int:
        """One round over every message awaiting delivery; returns how many got a final status."""
        sent_since = self._clock.now() - self._horizon
        after: tuple[datetime, int] | None = None
        settled = 0
        while True:
            async with self._reader.connect() as connection:
                page = await repository.awaiting_delivery(
                    connection,
                    provider=self._provider_name,
                    sent_since=sent_since,
                    after=after,
                    limit=self._batch_size,
                )
            if not page:
                return settled
            settled += await self._settle(page)
            after = (page[-1].sent_at, page[-1].id)

    async def _settle(self, page: list[AwaitingDelivery]) -> int:
        answers = await self._tracker.delivery_status(
            [report.provider_message_id for report in page]
        )
        final = {
            report.id: _FINAL[status]
            for report in page
            if (status := answers.get(report.provider_message_id)) in _FINAL
        }
        if not final:
            return 0
        async with begin_write(self._database) as connection:
            await repository.record_delivery(connection, final, now=self._clock.now())
        for report in page:
            if report.id in final:
                metrics.MESSAGES.labels(self._provider_name, final[report.id]).inc()
                _log.info(
                    "delivery reported",
                    mailing_id=report.mailing_id,
                    report_id=report.id,
                    client_id=report.client_id,
                    status=final[report.id],
                )
        return len(final)
