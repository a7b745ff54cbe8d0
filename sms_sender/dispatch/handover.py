"""The hand-over: a worker's held reports go to the provider a group at a time.

Before a group's calls start, each report is screened against its mailing's end and send window
(read at the claim), the group's slots of the shared rate limit are reserved, and the reports
are marked ``sending`` and *committed* after a last check that their mailing is still running.
Reports outside their window are put off until it opens; those that may never go are released.
See :mod:`sms_sender.dispatch.worker` for the whole life of a report in a worker.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sms_sender.clock import Clock
from sms_sender.dialects import begin_write, writer_turn
from sms_sender.dispatch import repository
from sms_sender.dispatch.ratelimit import PROMPT, RateLimiter, Reservation
from sms_sender.dispatch.repository import ClaimedReport, MailingTerms
from sms_sender.reports import lifecycle

_log = structlog.get_logger(__name__)

# Starts one report's provider call at its rate slot (a ``time.monotonic()`` instant).
StartSend = Callable[[ClaimedReport, MailingTerms, float], None]


class HandOver:
    """The reports a worker holds (claimed, not yet ``sending``) and their hand-over."""

    def __init__(
        self,
        *,
        database: AsyncEngine,
        clock: Clock,
        owner: str,
        provider_name: str,
        lease: timedelta,
        limiter: RateLimiter,
        start_send: StartSend,
    ) -> None:
        self.held: deque[ClaimedReport] = deque()
        self.terms: dict[int, MailingTerms] = {}  # of the held reports' mailings, as read then
        self._database = database
        self._clock = clock
        self._owner = owner
        self._provider_name = provider_name
        self._lease = lease
        self._limiter = limiter
        self._start_send = start_send

    async def admit(
        self, connection: AsyncConnection, claimed: list[ClaimedReport], now: datetime
    ) -> list[ClaimedReport]:
        """Read the claimed reports' mailing terms; the reports that may go now."""
        mailing_ids = list({report.mailing_id for report in claimed})
        fresh = await repository.mailing_terms(connection, mailing_ids)
        # Reports of an earlier claim may still be held (claims run ahead of the hand-over).
        still_held = {report.mailing_id for report in self.held}
        kept = {id_: terms for id_, terms in self.terms.items() if id_ in still_held}
        self.terms = kept | fresh
        return await self._screen(connection, claimed, now)

    async def next_group(self, size: int, stop: asyncio.Event) -> None:
        """Hand over the next group: reserve rate slots, mark it ``sending``, start its calls."""
        now = self._clock.now()
        upcoming = itertools.islice(self.held, size)
        if any(self._clearance(r, now).verdict is not lifecycle.Verdict.GO for r in upcoming):
            await self._screen_held(now)  # the window closed (or the end came) since the claim
        ready = [self.held.popleft() for _ in range(min(size, len(self.held)))]
        if not ready:
            return
        ids = [report.id for report in ready]
        try:
            await self._mark_and_send(ready, ids, stop)
        except BaseException:
            # Not marked, or marked without our knowing: a retry marks only the former; the
            # latter stay ``sending``, are not renewed and are reclaimed when their lease ends.
            self.held.extendleft(reversed(ready))
            raise

    async def release(self, report_ids: list[int]) -> None:
        """Give back the leases on reports never handed over."""
        async with begin_write(self._database) as connection:
            await repository.release(connection, report_ids, owner=self._owner)

    async def _mark_and_send(
        self, ready: list[ClaimedReport], ids: list[int], stop: asyncio.Event
    ) -> None:
        """Reserve rate slots, mark ``sending`` (committed), then start one call per report."""
        handed = await self._mark_if_slots_are_free(ids)
        if handed is None:  # the shared rate is taken for now: reserve, wait, then mark
            async with begin_write(self._database) as connection:
                reservation = await self._limiter.reserve(connection, len(ids))
            if await _stopped_before(reservation.first_at, stop):
                await self.release(ids)
                return
            async with begin_write(self._database) as connection:
                handed = await self._mark(connection, ids), reservation
        marked, reservation = handed
        for index, report in enumerate(report for report in ready if report.id in marked):
            terms = marked[report.id]  # as they are now: the mailing may have been edited
            self._start_send(report, terms, reservation.slot(index))

    async def _mark_if_slots_are_free(
        self, ids: list[int]
    ) -> tuple[dict[int, MailingTerms], Reservation] | None:
        """Mark and reserve in one transaction, unless the slots are not free at once (None).

        The common case costs one round trip. When other workers hold the rate for a while,
        the transaction is rolled back: a report must not wait in ``sending`` for its slot.
        """
        async with writer_turn(self._database), self._database.connect() as connection:
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
            owner=self._owner,
            provider=self._provider_name,
            now=now,
            lease_until=now + self._lease,
        )
        # Not marked: its mailing was paused, cancelled or ended, or its client deleted or
        # opted out (then it is skipped here, not released to be claimed again).
        left = [i for i in ids if i not in marked]
        if left:
            await repository.skip_opted_out(connection, left, owner=self._owner, now=now)
        await repository.release(connection, left, owner=self._owner)
        return marked

    def _clearance(self, report: ClaimedReport, now: datetime) -> lifecycle.Clearance:
        """May it go now, by its mailing's terms as read at the claim?"""
        terms = self.terms.get(report.mailing_id)
        return lifecycle.may_go_now(
            now=now,
            end_at=terms.end_at if terms else None,
            window=terms.window if terms else None,
            timezone=report.timezone,
        )

    async def _screen_held(self, now: datetime) -> None:
        """Screen every held report at once, keeping only those that may go now."""
        held = list(self.held)
        self.held.clear()
        try:
            async with begin_write(self._database) as connection:
                ready = await self._screen(connection, held, now)
        except BaseException:
            self.held.extend(held)  # still ours (leased): try them again
            raise
        self.held.extend(ready)

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
            clearance = self._clearance(report, now)
            if clearance.verdict is lifecycle.Verdict.GO:
                ready.append(report)
            elif clearance.opens_at is not None:
                put_off[report.id] = clearance.opens_at
            else:
                ended.append(report.id)  # the scheduler expires it (or it was deleted)
        await repository.put_off(connection, put_off, owner=self._owner, now=now)
        await repository.release(connection, ended, owner=self._owner)
        if put_off:
            _log.info(
                "outside the send window; put off until it opens",
                mailing_ids=sorted({r.mailing_id for r in group if r.id in put_off}),
                report_ids=sorted(put_off),
            )
        return ready


async def _stopped_before(monotonic_at: float, stop: asyncio.Event) -> bool:
    """Wait until ``monotonic_at``; True if ``stop`` was set first."""
    delay = monotonic_at - time.monotonic()
    if delay > 0 and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            return False
    return stop.is_set()
