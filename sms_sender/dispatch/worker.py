"""The worker: one loop that claims due reports, hands them over, sends them and records them.

A report's life in one worker, and what a crash at each point leaves behind:

1. **claimed** — leased to this worker, still ``pending``, held in ``_held``. A crash leaves an
   expiring lease; any worker claims it again. Nothing was sent.
2. **handed over** — right before its provider call (a small group at a time, as concurrency
   and the shared rate limit allow) it is marked ``sending`` and *committed*, after a last
   check that its mailing is still running (:mod:`sms_sender.dispatch.handover`). A crash from
   here on leaves ``sending`` with an expiring lease: the gateway may have the message, so it
   becomes ``unknown`` and is never sent again (unless the provider is idempotent). See
   :func:`repository.reclaim`; a dead worker's leases are taken over sooner, when its
   heartbeat stops or its pid is gone (:mod:`sms_sender.dispatch.heartbeat`).
3. **sent** — its call runs as a task in ``_in_flight`` (:mod:`sms_sender.dispatch.sending`:
   the last "may it go now?", the call, what the answer means); the loop takes its answer, a
   settlement, into ``_unrecorded``.
4. **settled** — the loop writes ``_unrecorded`` in batches, a statement per batch
   (:mod:`sms_sender.dispatch.results`), guarded so that a report cancelled or reclaimed
   meanwhile is not overwritten: in the next hand-over's transaction while there is one (one
   write turn for both), else in the background; then asks whether its mailing is finished.
   A crash before that commit leaves them ``sending``, as in step 2.

Graceful shutdown (the stop event): no new claims or hand-overs, in-flight calls get
``shutdown_grace`` seconds to answer and are recorded, claimed reports are released at once.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.clock import Clock
from sms_sender.config import Settings
from sms_sender.db import CHANNEL_REPORTS, Notifier
from sms_sender.dialects import begin_write, read_only
from sms_sender.dispatch import repository
from sms_sender.dispatch.handover import Claim, HandOver, clearance
from sms_sender.dispatch.heartbeat import new_worker_id
from sms_sender.dispatch.leases import Leases
from sms_sender.dispatch.ratelimit import RateLimiter
from sms_sender.dispatch.results import Recorder, Unrecorded
from sms_sender.dispatch.retry import RetryPolicy
from sms_sender.dispatch.sending import InFlight, Sender
from sms_sender.dispatch.types import ClaimedReport, MailingTerms
from sms_sender.dispatch.wakeups import RETRY_AFTER_ERROR, set_when, wait_or_stop
from sms_sender.providers.base import Provider
from sms_sender.reports.lifecycle import Verdict

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WorkerTuning:
    """Timings with sensible defaults; tests shorten some."""

    poll_interval: timedelta = timedelta(seconds=5)  # look for due work even without a wake-up
    # How often to look for sends abandoned by dead workers (None: half the lease).
    reclaim_interval: timedelta | None = None
    result_linger: float = 0.05  # seconds an answer may wait to be written with others
    # Seconds it may wait for the next hand-over to write it in its turn, while there is one.
    hand_over_linger: float = 0.2
    shutdown_grace: float = 10.0  # seconds in-flight sends get to answer at shutdown


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
        retry_after_error: float = RETRY_AFTER_ERROR,
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
        self._retry_after_error = retry_after_error
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._limiter = RateLimiter(settings.rate_limit)
        self._hand_over = HandOver(
            database, clock, self.id, provider.name, self._lease, self._limiter
        )
        self._leases = Leases(
            database=database,
            clock=clock,
            owner=self.id,
            provider=provider,
            lease=self._lease,
            reclaim_interval=self._tuning.reclaim_interval,
        )
        sender = Sender(
            provider=provider,
            clock=clock,
            retry=retry or RetryPolicy(settings.max_attempts, settings.retry_backoff),
            # A provider call may not outlive its lease, or a live send would look abandoned.
            timeout=settings.lease_seconds / 2,
        )
        # The reports this worker holds, by step (see the module docstring); only the loop
        # changes these.
        self._held: deque[ClaimedReport] = deque()
        self._terms: dict[int, MailingTerms] = {}  # of the held reports' mailings, as claimed
        self._in_flight = InFlight(sender, settings.concurrency)
        self._unrecorded = Unrecorded(
            Recorder(database, clock, self.id, provider.name),
            batch_size=settings.batch_size,
            linger=self._tuning.result_linger,
            hand_over_linger=self._tuning.hand_over_linger,
        )
        self._claiming: asyncio.Task[Claim] | None = None
        # What the loop knows of the queue of due work.
        self._drained = False
        self._last_claim_empty = False
        self._wake = asyncio.Event()
        self._claimed_up_to = clock.now()

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
                    # What was held keeps its lease and answers stay gathered; try again soon.
                    _log.warning("database unavailable; worker retries", error=repr(exc))
                    await wait_or_stop(self._retry_after_error, stop)
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
        """One turn of the loop, from claim to record; False when there is nothing to do."""
        if self._leases.renewal_due():
            await self._leases.renew([report.id for report in self._held] + self._sending_ids())
        if self._leases.reclaim_due():
            await self.reclaim()
        # Record what was answered: in the background, or at once if a mailing pauses.
        await self._record_when_due()
        # Claim the next batch in the background while this one is sent, so the slots never
        # wait for a claim's round trip.
        await self._take_claim(wait=False)
        if not self._drained and self._claiming is None and len(self._held) < self._batch_size:
            self._claiming = asyncio.create_task(
                self._hand_over.claim(self._start_claim(), self._batch_size)
            )
        if not self._held and self._claiming is not None:
            await self._take_claim(wait=True)  # nothing to hand over before it lands
        if not self._held and not self._in_flight:
            await self._record_all()
            return False
        # Hand over the next group as slots free up (its calls start), and take the answers.
        await self._send_next(stop)
        return True

    @property
    def _batch_size(self) -> int:
        return self._settings.batch_size

    def _start_claim(self) -> datetime:
        self._wake.clear()  # a wake-up from here on means "look again"
        self._claimed_up_to = self._clock.now()  # everything due by then is looked at
        return self._claimed_up_to

    async def _take_claim(self, *, wait: bool) -> None:
        """Hold what the background claim brought, once it is done (raises its error)."""
        if self._claiming is None or not (wait or self._claiming.done()):
            return
        claiming, self._claiming = self._claiming, None
        claimed, ready, terms = await claiming
        self._drained = len(claimed) < self._batch_size
        self._last_claim_empty = not claimed
        still_held = {report.mailing_id for report in self._held}
        self._terms = {i: t for i, t in self._terms.items() if i in still_held} | terms
        self._held.extend(ready)
        if claimed:
            _log.debug(
                "claimed reports",
                mailing_ids=sorted(terms),
                report_ids=[report.id for report in claimed],
            )

    async def _send_next(self, stop: asyncio.Event) -> None:
        """Hand over the next group as concurrency slots free up, or wait for answers."""
        if not self._held:
            await self._wait_for_answers(self._settings.concurrency)
            return
        rate_free_in = self._limiter.free_in()
        if rate_free_in > 0:
            # This worker's own slots run that long yet: asked now, the next ones would not be
            # free at once, and the group would cost three write turns instead of one (see
            # handover.HandOver.mark). Take answers meanwhile; the next turn hands it over.
            # A wake-up does not cut this wait short: it stays set for the next turn, and
            # while a claim is in flight a loop woken at once would spin without yielding
            # until the slots came (a stop is noticed after this wait, under 0.13 s).
            await self._wait_for_answers(
                self._settings.concurrency + 1, within=rate_free_in, wakeable=False
            )
            return
        group = min(len(self._held), self._limiter.group_size(), self._settings.concurrency)
        enough = max(1, group // 4)
        if self._in_flight.free() < enough:
            # Answers often come in bursts: a moment's wait makes one hand-over of many
            # instead of many hand-overs of one (each costs a round trip), while a quarter
            # of a group keeps the slots busy when answers trickle in. A wake-up does not cut
            # it short (it stays set for the next turn): with every slot busy and a claim in
            # flight, a turn that waited for nothing yielded nowhere, and the calls that
            # would free a slot never ran again.
            await self._wait_for_answers(enough, wakeable=False)
        if self._unrecorded.pausing:
            return  # a mailing pauses: the next turn records that first
        if self._in_flight.free() > 0 and not stop.is_set():
            await self._hand_over_group(min(self._in_flight.free(), group), stop)

    async def _hand_over_group(self, size: int, stop: asyncio.Event) -> None:
        """Mark the next ``size`` held reports ``sending`` and start their calls."""
        now = self._clock.now()
        upcoming = itertools.islice(self._held, size)
        if any(clearance(r, self._terms, now).verdict is not Verdict.GO for r in upcoming):
            await self._screen_held(now)  # the window closed (or the end came) since the claim
        group = [self._held.popleft() for _ in range(min(size, len(self._held)))]
        if not group:
            return
        answers = self._unrecorded.for_hand_over()  # written in the same turn
        try:
            handed, written = await self._hand_over.mark(group, stop, answers)
        except BaseException as exc:
            # Not marked, or marked without our knowing: a retry marks only the former; the
            # latter stay ``sending``, are not renewed and are reclaimed when their lease ends.
            # The answers, written or not, wait again: written, a second write changes nothing
            # (it names the ``sending`` status and the lease it expects).
            self._held.extendleft(reversed(group))
            self._unrecorded.hand_over_failed(answers)
            if answers and _refused(exc):
                return  # a row of the answers, most likely: they go alone, where it is found
            raise
        for each in handed:
            self._in_flight.start(each)
        self._unrecorded.after_hand_over(answers, written)

    async def _wait_for_answers(
        self, free_slots: int, within: float | None = None, *, wakeable: bool = True
    ) -> None:
        """Take answers as they come, until ``free_slots`` slots are free, ``within`` seconds
        (a moment, by default) passed, or (``wakeable``) a wake-up came."""
        linger = self._tuning.result_linger if within is None else within
        wake = self._wake if wakeable else asyncio.Event()  # never set: only time ends it
        self._unrecorded.add(await self._in_flight.wait(free_slots, linger, wake))
        if self._wake.is_set():
            self._drained = False

    async def _record_when_due(self) -> None:
        """Write the answers once enough gathered or waited; a pause first, and at once."""
        self._unrecorded.add(self._in_flight.take())
        if self._unrecorded.pausing:  # it lands before anything more of its mailing goes
            await self._give_back(await self._unrecorded.write_all())
        else:
            hand_over_next = bool(self._held)  # it may write them in its turn
            await self._give_back(
                await self._unrecorded.write_when_due(hand_over_next=hand_over_next)
            )

    async def _record_all(self) -> None:
        self._unrecorded.add(self._in_flight.take())
        await self._give_back(await self._unrecorded.write_all())

    async def _give_back(self, paused: list[int]) -> None:
        """Release the held reports of mailings this worker just paused (no funds)."""
        stopped = set(paused)
        if not stopped:
            return
        released = [report.id for report in self._held if report.mailing_id in stopped]
        self._held = deque(report for report in self._held if report.mailing_id not in stopped)
        await self._hand_over.release(released)

    async def _screen_held(self, now: datetime) -> None:
        """Screen every held report at once, keeping only those that may go now."""
        held = list(self._held)
        self._held.clear()
        try:
            async with begin_write(self._database) as connection:
                ready = await self._hand_over.screen(connection, held, self._terms, now)
        except BaseException:
            self._held.extend(held)  # still ours (leased): try them again
            raise
        self._held.extend(ready)

    async def reclaim(self) -> None:
        """Take over ``sending`` reports abandoned by dead workers (see repository.reclaim)."""
        await self._leases.reclaim(self._sending_ids())

    def _sending_ids(self) -> list[int]:
        """Reports this worker marked ``sending``: in flight, or answered but not yet written."""
        return self._in_flight.report_ids() + self._unrecorded.report_ids()

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

    async def _shut_down(self) -> None:
        if self._claiming is not None:  # let it finish, so what it claimed is released below
            try:
                await self._take_claim(wait=True)
            except repository.UNAVAILABLE as exc:  # what it leased, if anything, runs out
                _log.warning("the last claim failed at shutdown", error=repr(exc))
        held = [report.id for report in self._held]
        self._held.clear()
        await self._hand_over.release(held)
        self._unrecorded.add(await self._in_flight.finish(self._tuning.shutdown_grace))
        await self._record_all()
        _log.info("worker stopped", worker_id=self.id, released=len(held))


def _refused(error: BaseException) -> bool:
    """The database refused a statement's data (not an outage)."""
    return isinstance(error, repository.UNAVAILABLE) and repository.is_bad_data(error)
