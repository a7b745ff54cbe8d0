"""The scheduler: starts mailings at start_at and ends them at end_at, from the database alone.

It sleeps until the next start_at or end_at it knows of (one query), and is woken early when a
mailing is created, edited or resumed (the process's notifier, fired by serve's API through
its pipe to the engine, or by PostgreSQL LISTEN), with a poll every few seconds as a safety
net. The schedule lives only in the mailings table, so a restart loses nothing: a mailing
whose start_at passed while no process ran starts at once, and one whose end_at passed too
starts and ends in the same tick (its reports all ``expired``, which shows that nothing was
sent). Several schedulers (one per process) may run against one database: each status change
is a compare-and-set.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender import metrics
from sms_sender.clock import Clock
from sms_sender.db import CHANNEL_MAILINGS, Notifier
from sms_sender.dialects import begin_write, read_only, writer_turn
from sms_sender.dispatch import repository
from sms_sender.dispatch.wakeups import RETRY_AFTER_ERROR, set_when, wait_or_stop
from sms_sender.mailings import service as mailings_service
from sms_sender.mailings.models import Mailing

_log = structlog.get_logger(__name__)

# Seconds between counts of the queue depth and of running mailings, and folds of the counters.
GAUGES_EVERY = 5.0


class Scheduler:
    """Starts and ends mailings on time; ``run(stop)`` until the stop event is set."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        notifier: Notifier,
        poll_interval: timedelta = timedelta(seconds=5),
        retry_after_error: float = RETRY_AFTER_ERROR,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._database: AsyncEngine = sessionmaker.kw["bind"]
        self._reader = read_only(self._database)
        self._clock = clock
        self._notifier = notifier
        self._poll_interval = poll_interval
        self._retry_after_error = retry_after_error
        self._gauges_due_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        wake = self._notifier.subscribe(CHANNEL_MAILINGS)
        stop_watch = asyncio.create_task(set_when(stop, wake))
        try:
            while not stop.is_set():
                wake.clear()  # a change committed from here on is seen by the next tick
                try:
                    next_event_at = await self.tick()
                except repository.UNAVAILABLE as exc:
                    _log.warning("database unavailable; scheduler retries", error=repr(exc))
                    await wait_or_stop(self._retry_after_error, stop)
                    continue
                poll_at = self._clock.now() + self._poll_interval
                await self._clock.sleep_until(min(next_event_at or poll_at, poll_at), wake)
        finally:
            stop_watch.cancel()
            self._notifier.unsubscribe(CHANNEL_MAILINGS, wake)

    async def tick(self) -> datetime | None:
        """Start what is due, finish what is over (ended or done); the next event's time.

        Also closes any report left ``pending`` in a mailing that ended or was cancelled, so a
        finished mailing never keeps work that nothing would send.
        """
        await self._start_due()
        now = self._clock.now()
        async with begin_write(self._database) as connection:
            finished = await repository.finish_mailings(connection, now)
            if closed := await repository.close_left_pending(connection, now):
                _log.warning("closed reports left pending in ended mailings", count=closed)
            if time.monotonic() >= self._gauges_due_at:
                await self._update_gauges(connection, now)
            next_event_at = await repository.next_mailing_event_at(connection)
        log_finished(finished, now)
        return next_event_at

    async def _update_gauges(self, connection: AsyncConnection, now: datetime) -> None:
        # Counting a big queue is not free: at most once per GAUGES_EVERY, whatever wakes us.
        # Folding the counters' deltas keeps every count a read of a row or two per key.
        metrics.RUNNING_MAILINGS.set(await repository.count_running(connection))
        metrics.QUEUE_DEPTH.set(await repository.count_due(connection, now))
        await repository.fold_counts(connection)
        self._gauges_due_at = time.monotonic() + GAUGES_EVERY

    async def _start_due(self) -> None:
        async with self._reader.connect() as connection:
            due = await repository.mailings_to_start(connection, self._clock.now())
        for mailing_id in due:
            # One transaction per mailing: its reports are made in the same one (all or none).
            turn = writer_turn(self._database)
            async with turn, self._sessionmaker() as session, session.begin():
                mailing = await session.get(Mailing, mailing_id)
                now = self._clock.now()
                if mailing is None:  # deleted meanwhile
                    continue
                created = await mailings_service.start_mailing(session, mailing, now)
            if created is not None:
                metrics.SCHEDULER_LAG.labels("start").observe(_lag(now, mailing.start_at))
                _log.info("mailing started", mailing_id=mailing_id, reports=created)


def log_finished(finished: list[repository.Finished], now: datetime) -> None:
    """A line for each mailing just finished; how late the ends were, as a metric."""
    for mailing in finished:
        if mailing.ended:
            metrics.SCHEDULER_LAG.labels("end").observe(_lag(now, mailing.end_at))
            _log.info(
                "mailing ended at end_at", mailing_id=mailing.mailing_id, expired=mailing.expired
            )
        else:
            _log.info("mailing finished: nothing left to send", mailing_id=mailing.mailing_id)


def _lag(now: datetime, due_at: datetime) -> float:
    return max(0.0, (now - due_at).total_seconds())
