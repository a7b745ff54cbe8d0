"""The worker: claims due reports in batches, sends them concurrently, writes results in batches.

A report's life in one worker, and what a crash at each point leaves behind:

1. **claimed** — leased to this worker, still ``pending``. A crash leaves an expiring lease;
   any worker claims it again. Nothing was sent.
2. **handed over** — right before its provider call (a small group at a time, as concurrency
   and the shared rate limit allow) it is marked ``sending`` and *committed*, after a last
   check that its mailing is still running. A crash from here on leaves ``sending`` with an
   expiring lease: the gateway may have the message, so it becomes ``unknown`` and is never
   sent again (unless the provider is idempotent). See :func:`repository.reclaim`; a dead
   worker's leases are taken over sooner, when its heartbeat stops or its pid is gone
   (:mod:`sms_sender.dispatch.heartbeat`). The hand-over is :mod:`sms_sender.dispatch.handover`;
   what each answer does to the report, :mod:`sms_sender.reports.lifecycle`.
3. **settled** — the answers are written together, a batch per statement, guarded so that a
   report cancelled or reclaimed meanwhile is not overwritten.

Graceful shutdown (the stop event): no new claims or hand-overs, in-flight calls get
``shutdown_grace`` seconds to answer and are recorded, claimed reports are released at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.clock import Clock
from sms_sender.config import Settings
from sms_sender.db import CHANNEL_REPORTS, Notifier
from sms_sender.dialects import begin_write, read_only
from sms_sender.dispatch import repository
from sms_sender.dispatch.handover import HandOver
from sms_sender.dispatch.heartbeat import new_worker_id
from sms_sender.dispatch.ratelimit import RateLimiter
from sms_sender.dispatch.repository import ClaimedReport, MailingTerms, Settlement
from sms_sender.dispatch.results import Results
from sms_sender.dispatch.retry import RetryPolicy
from sms_sender.dispatch.sending import Sender
from sms_sender.dispatch.wakeups import RETRY_AFTER_ERROR, set_when, wait_or_stop
from sms_sender.providers.base import Provider

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WorkerTuning:
    """Timings with sensible defaults; tests shorten some."""

    poll_interval: timedelta = timedelta(seconds=5)  # look for due work even without a wake-up
    # How often to look for sends abandoned by dead workers; None: half the lease, so one is
    # settled within 1.5 leases of its worker's death.
    reclaim_interval: timedelta | None = None
    result_linger: float = 0.05  # seconds a result may wait to be written with others
    shutdown_grace: float = 10.0  # seconds in-flight sends get to answer at shutdown
    retry_after_error: float = RETRY_AFTER_ERROR


class Worker:
    """Delivers due reports; ``run(stop)`` until the stop event is set."""

    def __init__(
        self,
        *,
        settings: Settings,
        database: AsyncEngine,
        provider: Provider,
        clock: Clock,
        notifier: Notifier,
        tuning: WorkerTuning | None = None,
        retry: RetryPolicy | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.id = worker_id or new_worker_id()
        self._settings = settings
        self._database = database
        self._reader = read_only(database)
        self._provider = provider
        self._clock = clock
        self._notifier = notifier
        self._tuning = tuning or WorkerTuning()
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._limiter = RateLimiter(settings.rate_limit)
        self._sender = Sender(
            provider=provider,
            clock=clock,
            retry=retry or RetryPolicy(settings.max_attempts, settings.retry_backoff),
            # A provider call may not outlive its lease, or a live send would look abandoned.
            timeout=settings.lease_seconds / 2,
        )
        self._hand_over = HandOver(
            database=database,
            clock=clock,
            owner=self.id,
            provider_name=provider.name,
            lease=self._lease,
            limiter=self._limiter,
            start_send=self._start_send,
        )
        self._in_flight: dict[asyncio.Task[Settlement], ClaimedReport] = {}
        self._results = Results(
            database=database,
            clock=clock,
            owner=self.id,
            provider_name=provider.name,
            batch_size=settings.batch_size,
            linger=self._tuning.result_linger,
        )
        self._drained = False
        self._last_claim_empty = False
        self._claiming: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._enough_free = asyncio.Event()
        self._slots_wanted = settings.concurrency
        self._next_reclaim_at = clock.now()
        self._claimed_up_to = clock.now()
        self._next_renewal_at = clock.now() + self._lease / 3

    @property
    def provider_name(self) -> str:
        return self._provider.name

    def wake(self) -> None:
        """Look for due work now (new reports, a resumed mailing, shutdown)."""
        self._wake.set()

    async def prepare(self) -> None:
        """Create the shared rate limiter's row if this database has none yet."""
        async with begin_write(self._database) as connection:
            await self._limiter.ensure_row(connection)

    async def run(self, stop: asyncio.Event) -> None:
        # New reports, a resumed mailing or a widened send window all notify this channel.
        self._wake = self._notifier.subscribe(CHANNEL_REPORTS)
        stop_watch = asyncio.create_task(set_when(stop, self._wake))
        try:
            await self.prepare()
            while not stop.is_set():
                try:
                    if not await self.turn(stop):
                        await self._idle(stop)
                except repository.UNAVAILABLE as exc:
                    # What was held keeps its lease and results stay queued; try again soon.
                    _log.warning("database unavailable; worker retries", error=repr(exc))
                    await wait_or_stop(self._tuning.retry_after_error, stop)
        finally:
            stop_watch.cancel()
            self._notifier.unsubscribe(CHANNEL_REPORTS, self._wake)
            await self._shut_down()

    async def drain(self) -> None:
        """Run the loop until nothing is due now, then write the results (tests, benchmarks).

        The same turns as :meth:`run`; only instead of sleeping when idle it returns, once a
        claim has found nothing more to do.
        """
        never = asyncio.Event()
        await self.prepare()
        self._drained = self._last_claim_empty = False  # what is due now is not yet looked at
        while True:
            if await self.turn(never):
                continue
            if self._last_claim_empty:
                return
            self._drained = False  # look again: a retry or a released report may be due now

    async def turn(self, stop: asyncio.Event) -> bool:
        """One turn of the loop, from claim to record; False when there is nothing to do.

        Housekeeping first (renew leases, reclaim abandoned sends, write a pause at once), then:
        claim the next batch in the background while the last is sent, hand over the next group
        as slots free up (the hand-over asks may it go now, marks it ``sending`` and starts the
        calls), and write the answers that came back in batches.
        """
        now = self._clock.now()
        if now >= self._next_renewal_at:
            await self._renew_leases()
        if now >= self._next_reclaim_at:
            await self.reclaim()
        if self._results.urgent:
            await self._results.flush()  # a pause lands before anything more of its mailing goes
        await self._release_paused()
        self._results.write_when_due()
        self._collect_claim()
        if self._wants_claim():
            # Claim the next batch while this one is being sent, so the slots never wait for
            # a claim's round trip.
            self._claiming = asyncio.create_task(self._claim())
        if not self._hand_over.held and self._claiming is not None:
            await self._claimed()  # nothing to hand over before it lands
        if self._hand_over.held or self._in_flight:
            await self._advance(stop)
            return True
        await self._results.flush()
        return False

    def _wants_claim(self) -> bool:
        held = len(self._hand_over.held)
        return not self._drained and self._claiming is None and held < self._settings.batch_size

    def _collect_claim(self) -> None:
        """Take the result of a claim that ran in the background: its error, if any."""
        if self._claiming is not None and self._claiming.done():
            claiming, self._claiming = self._claiming, None
            claiming.result()

    async def _claimed(self) -> None:
        """Wait for the claim running in the background."""
        if self._claiming is not None:
            await asyncio.wait([self._claiming])
            self._collect_claim()

    async def _advance(self, stop: asyncio.Event) -> None:
        """Hand over the next group as concurrency slots free up, or wait for answers."""
        if not self._hand_over.held:
            await self._wait_for_answers(self._settings.concurrency)
            return
        group = min(
            len(self._hand_over.held), self._limiter.group_size(), self._settings.concurrency
        )
        enough = max(1, group // 4)
        if self._free_slots() < enough:
            # Answers often come in bursts: a moment's wait makes one hand-over of many
            # instead of many hand-overs of one (each costs a round trip), while a quarter
            # of a group keeps the slots busy when answers trickle in.
            await self._wait_for_answers(enough)
        if self._results.urgent:
            return  # a mailing pauses: the loop writes that first
        if self._free_slots() > 0 and not stop.is_set():
            await self._hand_over.next_group(min(self._free_slots(), group), stop)

    async def _release_paused(self) -> None:
        """Give back the held reports of mailings this worker just paused (no funds)."""
        paused = set(self._results.take_paused())
        if not paused:
            return
        held = self._hand_over.held
        released = [report.id for report in held if report.mailing_id in paused]
        self._hand_over.held = deque(report for report in held if report.mailing_id not in paused)
        await self._hand_over.release(released)

    def _free_slots(self) -> int:
        return self._settings.concurrency - len(self._in_flight)

    async def reclaim(self) -> None:
        """Settle ``sending`` reports abandoned by dead workers (see repository.reclaim)."""
        now = self._clock.now()
        resendable = self._provider.name if self._provider.idempotent else None
        async with begin_write(self._database) as connection:
            reclaimed = await repository.reclaim(
                connection,
                now=now,
                in_flight=self._sending_ids(),
                resendable_provider=resendable,
            )
        self._next_reclaim_at = now + (self._tuning.reclaim_interval or self._lease / 2)
        for report in reclaimed:
            _log.warning(
                "reclaimed a send abandoned by a stopped worker",
                mailing_id=report.mailing_id,
                report_id=report.report_id,
                client_id=report.client_id,
                status=report.status,
            )

    async def _claim(self) -> None:
        self._wake.clear()  # a wake-up from here on means "look again"
        now = self._clock.now()
        self._claimed_up_to = now  # everything due by then was looked at
        ready: list[ClaimedReport] = []
        async with begin_write(self._database) as connection:
            claimed = await repository.claim(
                connection,
                owner=self.id,
                now=now,
                lease_until=now + self._lease,
                limit=self._settings.batch_size,
            )
            if claimed:
                ready = await self._hand_over.admit(connection, claimed, now)
        self._drained = len(claimed) < self._settings.batch_size
        self._last_claim_empty = not claimed
        self._hand_over.held.extend(ready)
        if claimed:
            _log.debug(
                "claimed reports",
                mailing_ids=sorted(self._hand_over.terms),
                report_ids=[report.id for report in claimed],
            )

    def _start_send(self, report: ClaimedReport, terms: MailingTerms, slot: float) -> None:
        task = asyncio.create_task(self._sender.send(report, terms, slot))
        self._in_flight[task] = report
        task.add_done_callback(self._on_answer)

    def _on_answer(self, task: asyncio.Task[Settlement]) -> None:
        report = self._in_flight.pop(task)
        if self._free_slots() >= self._slots_wanted:
            self._enough_free.set()
        if task.cancelled():  # only if the event loop itself is being torn down
            return
        if (error := task.exception()) is not None:  # a bug: the lease runs out, then reclaim
            _log.error(
                "send task failed",
                mailing_id=report.mailing_id,
                report_id=report.id,
                exc_info=error,
            )
            return
        self._results.add(task.result())

    async def _wait_for_answers(self, free_slots: int) -> None:
        """Wait until ``free_slots`` slots are free, a wake-up, or ``result_linger`` passes."""
        self._slots_wanted = free_slots
        if self._free_slots() >= free_slots:
            return
        self._enough_free.clear()
        waits = [
            asyncio.ensure_future(self._enough_free.wait()),
            asyncio.ensure_future(self._wake.wait()),
        ]
        try:
            await asyncio.wait(
                waits, timeout=self._tuning.result_linger, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for wait in waits:
                wait.cancel()
        if self._wake.is_set():
            self._drained = False

    async def _idle(self, stop: asyncio.Event) -> None:
        """Sleep until the next retry or window opening, a wake-up, or the poll interval."""
        async with self._reader.connect() as connection:
            next_due = await repository.next_due_at(connection, after=self._claimed_up_to)
        # Due since the last claim (even already, if the clock moved on meanwhile): no sleep.
        poll_at = self._clock.now() + self._tuning.poll_interval
        # The claim cleared the wake-up, possibly a stop's: look at the stop itself too.
        if not stop.is_set():
            await self._clock.sleep_until(min(next_due or poll_at, poll_at), self._wake)
        self._drained = False

    def _sending_ids(self) -> list[int]:
        """Reports this worker marked ``sending``: in flight, or answered but not yet written."""
        return [report.id for report in self._in_flight.values()] + self._results.report_ids()

    async def _renew_leases(self) -> None:
        now = self._clock.now()
        held = [report.id for report in self._hand_over.held] + self._sending_ids()
        async with begin_write(self._database) as connection:
            await repository.renew(connection, held, owner=self.id, lease_until=now + self._lease)
        self._next_renewal_at = now + self._lease / 3

    async def _shut_down(self) -> None:
        if self._claiming is not None:  # let it finish, so what it claimed is released below
            await asyncio.wait([self._claiming])
            self._claiming = None
        held = [report.id for report in self._hand_over.held]
        self._hand_over.held.clear()
        await self._hand_over.release(held)
        if self._in_flight:
            _log.info("waiting for sends in flight", count=len(self._in_flight))
            await asyncio.wait(list(self._in_flight), timeout=self._tuning.shutdown_grace)
        for task in list(self._in_flight):
            task.cancel()  # Sender.send turns this into a settlement: the outcome is unknown
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))
        await self._results.flush()
        _log.info("worker stopped", worker_id=self.id, released=len(held))
