"""Delivery tracking: asks a provider that can tell (SMS Aero) whether ``sent`` reached the phone.

Every ``interval`` it walks the ``sent`` reports of its provider from the last ``horizon`` (the
provider's ``status_lifetime``: after it the gateway has nothing new to say) in keyset pages of
``batch_size``, asks the provider about the reports that are due, and moves the answered ones
to ``delivered`` or ``undelivered`` with one statement per page. Several workers may poll at
once: the update only moves reports that are still ``sent``.

Polling has its own budget and never takes from sending: the provider asks over its own small
connection pool at its own rate (see ``SmsAeroProvider``), and each message is asked about less
and less often as it ages (:func:`is_due`: after ``interval``, 2x, 4x... up to once every
``max_gap``), so a message in transit for two days costs tens of questions, not thousands. A
round the gateway throttles (``TrackingThrottled``, HTTP 429) ends there, is logged, and the
next round waits the gateway's ``Retry-After`` or twice as long as the last, up to
``max_gap``; the reports it did not reach stay due.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender import metrics
from sms_sender.clock import Clock
from sms_sender.dialects import begin_write, read_only
from sms_sender.dispatch import repository
from sms_sender.dispatch.repository import AwaitingDelivery
from sms_sender.dispatch.wakeups import set_when
from sms_sender.providers.base import DeliveryStatus, DeliveryTracking, TrackingThrottled
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
        horizon: timedelta | None = None,
        max_gap: timedelta = timedelta(hours=1),
    ) -> None:
        self._database = database
        self._reader = read_only(database)
        self._clock = clock
        self._tracker = tracker
        self._provider_name = provider_name
        self._batch_size = batch_size
        self._interval = interval
        lifetime: timedelta = getattr(tracker, "status_lifetime", DEFAULT_HORIZON)
        self._horizon = horizon if horizon is not None else lifetime
        self._max_gap = max_gap
        # When the last complete round ran: a report is due if it crossed one of its ages to be
        # asked at since then. None until the first round, which asks about every report.
        self._last_round_at: datetime | None = None
        self._backoff: timedelta | None = None  # set while the gateway throttles us

    async def run(self, stop: asyncio.Event) -> None:
        wake = asyncio.Event()
        stop_watch = asyncio.create_task(set_when(stop, wake))
        try:
            while not stop.is_set():
                round_started_at = self._clock.now()
                await self.poll()
                pause = self._backoff or self._interval
                await self._clock.sleep_until(round_started_at + pause, wake)
        finally:
            stop_watch.cancel()

    async def poll(self) -> int:
        """One round over the messages due a question; returns how many got a final status."""
        now = self._clock.now()
        try:
            delivered = await self._poll_round(now)
        except TrackingThrottled as exc:
            self._slow_down(exc)
            return 0
        self._last_round_at = now
        self._backoff = None
        return delivered

    def _slow_down(self, throttled: TrackingThrottled) -> None:
        doubled = 2 * (self._backoff or self._interval)
        asked = timedelta(seconds=throttled.retry_after or 0)
        self._backoff = min(max(doubled, asked), max(self._max_gap, asked))
        _log.warning(
            "delivery polling throttled by the gateway; polling less often",
            provider=self._provider_name,
            reason=str(throttled),
            retry_after=throttled.retry_after,
            next_round_in=self._backoff.total_seconds(),
        )

    async def _poll_round(self, now: datetime) -> int:
        sent_since = now - self._horizon
        after: tuple[datetime, int] | None = None
        finals = 0
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
                return finals
            due = [report for report in page if self._is_due(report.sent_at, now)]
            if due:
                finals += await self._record_statuses(due)
            after = (page[-1].sent_at, page[-1].id)

    def _is_due(self, sent_at: datetime, now: datetime) -> bool:
        if self._last_round_at is None:
            return True
        first, cap = self._interval.total_seconds(), self._max_gap.total_seconds()
        return is_due(
            (self._last_round_at - sent_at).total_seconds(),
            (now - sent_at).total_seconds(),
            first=first,
            cap=cap,
        )

    async def _record_statuses(self, page: list[AwaitingDelivery]) -> int:
        """Ask the provider about these sent messages; record and count the final answers."""
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


DEFAULT_HORIZON = timedelta(days=2)  # for a tracker that does not say how long it can tell


def is_due(age_before: float, age_now: float, *, first: float, cap: float) -> bool:
    """Whether a message crossed an age to be asked at between two rounds (ages in seconds).

    The ages are ``first``, ``2 * first``, ``4 * first``... below ``cap``, then every ``cap``.
    """
    return _asked_so_far(age_now, first, cap) > _asked_so_far(age_before, first, cap)


def _asked_so_far(age: float, first: float, cap: float) -> int:
    """How many of a message's ages to be asked at lie at or before ``age``."""
    if age < first:
        return 0
    doublings = math.ceil(math.log2(cap / first)) if cap > first else 0
    if age < cap:
        return min(math.floor(math.log2(age / first)) + 1, doublings)
    return doublings + math.floor(age / cap)
