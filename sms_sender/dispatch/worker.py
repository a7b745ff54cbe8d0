"""The worker: claims due reports in batches, sends them concurrently, writes results in batches.

A report's life in one worker, and what a crash at each point leaves behind:

1. **claimed** — leased to this worker, still ``pending``. A crash leaves an expiring lease;
   any worker claims it again. Nothing was sent.
2. **handed over** — right before its provider call (a small group at a time, as concurrency
   and the shared rate limit allow) it is marked ``sending`` and *committed*, after a last
   check that its mailing is still running. A crash from here on leaves ``sending`` with an
   expiring lease: the gateway may have the message, so it becomes ``interrupted`` and is never
   sent again (unless the provider is idempotent). See :func:`repository.reclaim`.
3. **settled** — the answers are written together, a batch per statement, guarded so that a
   report cancelled or reclaimed meanwhile is not overwritten.

Graceful shutdown (the stop event): no new claims or hand-overs, in-flight calls get
``shutdown_grace`` seconds to answer and are recorded, claimed reports are released at once.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import socket
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sms_sender.clock import Clock
from sms_sender.config import Settings
from sms_sender.db import CHANNEL_REPORTS, Notifier
from sms_sender.dispatch import repository
from sms_sender.dispatch.ratelimit import PROMPT, RateLimiter, Reservation
from sms_sender.dispatch.repository import ClaimedReport, MailingTerms, Settlement
from sms_sender.dispatch.results import Results
from sms_sender.dispatch.retry import RetryPolicy
from sms_sender.dispatch.sending import Sender
from sms_sender.dispatch.wakeups import set_when, wait_or_stop
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
    retry_after_error: float = 2.0  # seconds before trying again after losing the database


def new_worker_id() -> str:
    """Unique per worker instance, readable in the reports table (host, pid, random)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


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
        self._held: deque[ClaimedReport] = deque()
        self._terms: dict[int, MailingTerms] = {}
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
        async with self._database.begin() as connection:
            await self._limiter.ensure_row(connection)

    async def run(self, stop: asyncio.Event) -> None:
        # New reports, a resumed mailing or a widened send window all notify this channel.
        self._wake = self._notifier.subscribe(CHANNEL_REPORTS)
        stop_watch = asyncio.create_task(set_when(stop, self._wake))
        try:
            await self.prepare()
            while not stop.is_set():
                try:
                    await self.step(stop)
                except repository.UNAVAILABLE as exc:
                    # What was held keeps its lease and results stay queued; try again soon.
                    _log.warning("database unavailable; worker retries", error=repr(exc))
                    await wait_or_stop(self._tuning.retry_after_error, stop)
        finally:
            stop_watch.cancel()
            self._notifier.unsubscribe(CHANNEL_REPORTS, self._wake)
            await self._shut_down()

    async def step(self, stop: asyncio.Event) -> None:
        """One turn of the loop: housekeeping, then claim, hand over, wait for answers or idle."""
        now = self._clock.now()
        if now >= self._next_renewal_at:
            await self._renew_leases()
        if now >= self._next_reclaim_at:
            await self.reclaim()
        self._results.write_when_due()
        if not self._held and not self._drained:
            await self._claim()
        if self._held or self._in_flight:
            await self._advance(stop)
        else:
            await self._results.flush()
            await self._idle(stop)

    async def drain(self) -> None:
        """Send everything due now and write the results (tests and benchmarks)."""
        never = asyncio.Event()
        await self.prepare()
        while True:
            await self._claim()
            if not self._held and not self._in_flight:
                return
            while self._held or self._in_flight:
                await self._advance(never)
                self._results.write_when_due()
            await self._results.flush()

    async def _advance(self, stop: asyncio.Event) -> None:
        """Hand over the next group as concurrency slots free up, or wait for answers."""
        if not self._held:
            await self._wait_for_answers(self._settings.concurrency)
            return
        group = min(len(self._held), self._limiter.group_size(), self._settings.concurrency)
        enough = max(1, group // 4)
        if self._free_slots() < enough:
            # Answers often come in bursts: a moment's wait makes one hand-over of many
            # instead of many hand-overs of one (each costs a round trip), while a quarter
            # of a group keeps the slots busy when answers trickle in.
            await self._wait_for_answers(enough)
        if self._free_slots() > 0 and not stop.is_set():
            await self._hand_over(min(self._free_slots(), group), stop)

    def _free_slots(self) -> int:
        return self._settings.concurrency - len(self._in_flight)

    async def reclaim(self) -> None:
        """Settle ``sending`` reports abandoned by dead workers (see repository.reclaim)."""
        now = self._clock.now()
        resendable = self._provider.name if self._provider.idempotent else None
        async with self._database.begin() as connection:
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
        async with self._database.begin() as connection:
            claimed = await repository.claim(
                connection,
                owner=self.id,
                now=now,
                lease_until=now + self._lease,
                limit=self._settings.batch_size,
            )
            if claimed:
                mailing_ids = list({report.mailing_id for report in claimed})
                self._terms = await repository.mailing_terms(connection, mailing_ids)
                ready = await self._screen(connection, claimed, now)
        self._drained = len(claimed) < self._settings.batch_size
        self._held.extend(ready)
        if claimed:
            _log.debug(
                "claimed reports",
                mailing_ids=sorted(self._terms),
                report_ids=[report.id for report in claimed],
            )

    async def _hand_over(self, size: int, stop: asyncio.Event) -> None:
        """Reserve the next group's rate slots, mark it ``sending``, start its calls."""
        now = self._clock.now()
        if any(self._must_wait(report, now) for report in itertools.islice(self._held, size)):
            await self._screen_held(now)  # the window closed (or the end came) since the claim
        ready = [self._held.popleft() for _ in range(min(size, len(self._held)))]
        if not ready:
            return
        ids = [report.id for report in ready]
        try:
            await self._mark_and_send(ready, ids, stop)
        except BaseException:
            # Not marked, or marked without our knowing: a retry marks only the former; the
            # latter stay ``sending``, are not renewed and are reclaimed when their lease ends.
            self._held.extendleft(reversed(ready))
            raise

    async def _mark_and_send(
        self, ready: list[ClaimedReport], ids: list[int], stop: asyncio.Event
    ) -> None:
        """Reserve rate slots, mark ``sending`` (committed), then start one call per report."""
        handed = await self._mark_if_slots_are_free(ids)
        if handed is None:  # the shared rate is taken for now: reserve, wait, then mark
            async with self._database.begin() as connection:
                reservation = await self._limiter.reserve(connection, len(ids))
            if await _stopped_before(reservation.first_at, stop):
                await self._release(ids)
                return
            async with self._database.begin() as connection:
                handed = await self._mark(connection, ids), reservation
        marked, reservation = handed
        for index, report in enumerate(report for report in ready if report.id in marked):
            terms = marked[report.id]  # as they are now: the mailing may have been edited
            task = asyncio.create_task(self._sender.send(report, terms, reservation.slot(index)))
            self._in_flight[task] = report
            task.add_done_callback(self._on_answer)

    async def _mark_if_slots_are_free(
        self, ids: list[int]
    ) -> tuple[dict[int, MailingTerms], Reservation] | None:
        """Mark and reserve in one transaction, unless the slots are not free at once (None).

        The common case costs one round trip. When other workers hold the rate for a while,
        the transaction is rolled back: a report must not wait in ``sending`` for its slot.
        """
        async with self._database.connect() as connection:
            async with connection.begin() as transaction:
                marked = await self._mark(connection, ids)
                reservation = await self._limiter.reserve(connection, max(1, len(marked)))
                if reservation.delay() > PROMPT:
                    await transaction.rollback()
                    return None
            return marked, reservation

    async def _mark(self, connection: AsyncConnection, ids: list[int]) -> dict[int, MailingTerms]:
        now = self._clock.now()
        marked = await repository.hand_over(
            connection,
            ids,
            owner=self.id,
            provider=self._provider.name,
            now=now,
            lease_until=now + self._lease,
        )
        # Not marked: its mailing was paused, cancelled or ended, or its client deleted.
        await repository.release(connection, [i for i in ids if i not in marked], owner=self.id)
        return marked

    def _must_wait(self, report: ClaimedReport, now: datetime) -> bool:
        """Whether, by the terms read at the claim, the report may not go now."""
        terms = self._terms.get(report.mailing_id)
        if terms is None or now >= terms.end_at:
            return True
        return (
            terms.window is not None and terms.window.next_opening(now, report.timezone) is not None
        )

    async def _screen_held(self, now: datetime) -> None:
        """Screen every held report at once, keeping only those that may go now."""
        held = list(self._held)
        self._held.clear()
        try:
            async with self._database.begin() as connection:
                ready = await self._screen(connection, held, now)
        except BaseException:
            self._held.extend(held)  # still ours (leased): try them again
            raise
        self._held.extend(ready)

    async def _screen(
        self, connection: AsyncConnection, group: list[ClaimedReport], now: datetime
    ) -> list[ClaimedReport]:
        """Keep what may go now; put off what is outside its send window, drop what has ended.

        A whole claimed batch in one statement each, so reports waiting for their window cost
        one transaction per batch, not one per rate-limit group.
        """
        ready: list[ClaimedReport] = []
        put_off: dict[int, datetime] = {}
        ended: list[int] = []
        for report in group:
            terms = self._terms.get(report.mailing_id)
            if terms is None or now >= terms.end_at:
                ended.append(report.id)  # the scheduler expires it (or it was deleted)
                continue
            opening = terms.window.next_opening(now, report.timezone) if terms.window else None
            if opening is None:
                ready.append(report)
            else:
                put_off[report.id] = opening
        await repository.put_off(connection, put_off, owner=self.id, now=now)
        await repository.release(connection, ended, owner=self.id)
        if put_off:
            _log.info(
                "outside the send window; put off until it opens",
                mailing_ids=sorted({r.mailing_id for r in group if r.id in put_off}),
                report_ids=sorted(put_off),
            )
        return ready

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
        async with self._database.connect() as connection:
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
        held = [report.id for report in self._held] + self._sending_ids()
        async with self._database.begin() as connection:
            await repository.renew(connection, held, owner=self.id, lease_until=now + self._lease)
        self._next_renewal_at = now + self._lease / 3

    async def _release(self, report_ids: list[int]) -> None:
        async with self._database.begin() as connection:
            await repository.release(connection, report_ids, owner=self.id)

    async def _shut_down(self) -> None:
        held = [report.id for report in self._held]
        self._held.clear()
        await self._release(held)
        if self._in_flight:
            _log.info("waiting for sends in flight", count=len(self._in_flight))
            await asyncio.wait(list(self._in_flight), timeout=self._tuning.shutdown_grace)
        for task in list(self._in_flight):
            task.cancel()  # Sender.send turns this into a settlement: the outcome is unknown
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))
        await self._results.flush()
        _log.info("worker stopped", worker_id=self.id, released=len(held))


async def _stopped_before(monotonic_at: float, stop: asyncio.Event) -> bool:
    """Wait until ``monotonic_at``; True if ``stop`` was set first."""
    delay = monotonic_at - time.monotonic()
    if delay > 0 and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            return False
    return stop.is_set()
