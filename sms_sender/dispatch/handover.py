"""Claim and hand-over: lease due reports, screen them, mark a group ``sending`` with rate slots.

Each step takes the reports and answers with what became of them; the worker keeps the reports
(:mod:`sms_sender.dispatch.worker`) and starts the calls. Before a group's calls start, each
report is screened against its mailing's end and send window (read at the claim), the group's
slots of the shared rate limit are reserved, and the reports are marked ``sending`` and
*committed* after a last check that their mailing is still running. Reports outside their
window are put off until it opens; those that may never go are released.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sms_sender.clock import Clock
from sms_sender.dialects import begin_write, writer_turn
from sms_sender.dispatch import repository
from sms_sender.dispatch.ratelimit import PROMPT, RateLimiter, Reservation
from sms_sender.dispatch.types import ClaimedReport, MailingTerms, Settlement
from sms_sender.reports import lifecycle

_log = structlog.get_logger(__name__)


# A claim: what it leased, what of that may go now, and the terms of their mailings.
Claim = tuple[list[ClaimedReport], list[ClaimedReport], dict[int, MailingTerms]]


@dataclass(frozen=True, slots=True)
class Handed:
    """A report marked ``sending``: its mailing's terms as they are now, and its rate slot."""

    report: ClaimedReport
    terms: MailingTerms
    slot_at: float  # a time.monotonic() instant


def clearance(
    report: ClaimedReport, terms: dict[int, MailingTerms], now: datetime
) -> lifecycle.Clearance:
    """May it go now, by its mailing's terms as read at the claim?"""
    known = terms.get(report.mailing_id)
    return lifecycle.may_go_now(
        now=now,
        end_at=known.end_at if known else None,
        window=known.window if known else None,
        timezone=report.timezone,
    )


@dataclass(frozen=True)
class HandOver:
    """One worker's hand-over: who it is and what it shares (rate limit); no state of its own."""

    database: AsyncEngine
    clock: Clock
    owner: str
    provider_name: str
    lease: timedelta
    limiter: RateLimiter

    async def claim(self, now: datetime, limit: int) -> Claim:
        """Lease up to ``limit`` due reports, read their mailings' terms, screen them."""
        async with begin_write(self.database) as connection:
            claimed = await repository.claim(
                connection, owner=self.owner, now=now, lease_until=now + self.lease, limit=limit
            )
            if not claimed:
                return [], [], {}
            mailing_ids = list({report.mailing_id for report in claimed})
            terms = await repository.mailing_terms(connection, mailing_ids)
            return claimed, await self.screen(connection, claimed, terms, now), terms

    async def screen(
        self,
        connection: AsyncConnection,
        group: Sequence[ClaimedReport],
        terms: dict[int, MailingTerms],
        now: datetime,
    ) -> list[ClaimedReport]:
        """Keep what may go now; put off what is outside its send window, drop what has ended.

        A whole claimed batch in one statement each, so reports waiting for their window cost
        one transaction per batch, not one per rate-limit group.
        """
        ready: list[ClaimedReport] = []
        put_off: dict[int, datetime] = {}
        ended: list[int] = []
        for report in group:
            cleared = clearance(report, terms, now)
            if cleared.verdict is lifecycle.Verdict.GO:
                ready.append(report)
            elif cleared.opens_at is not None:
                put_off[report.id] = cleared.opens_at
            else:
                ended.append(report.id)  # the scheduler expires it (or it was deleted)
        await repository.put_off(connection, put_off, owner=self.owner, now=now)
        await repository.release(connection, ended, owner=self.owner)
        if put_off:
            _log.info(
                "outside the send window; put off until it opens",
                mailing_ids=sorted({r.mailing_id for r in group if r.id in put_off}),
                report_ids=sorted(put_off),
            )
        return ready

    async def mark(
        self,
        group: Sequence[ClaimedReport],
        stop: asyncio.Event,
        answers: Sequence[Settlement] = (),
    ) -> tuple[list[Handed], int | None]:
        """Reserve rate slots and mark the group ``sending`` (committed); those marked.

        One write turn when the slots are free at once, which the worker sees to by asking
        only when its own reservations run out (:meth:`RateLimiter.free_in`): alone on the
        rate (SQLite's one worker), that is every group. The same transaction first settles
        ``answers`` (earlier sends' outcomes, see :mod:`sms_sender.dispatch.results`), so they
        cost no turn of their own either; how many it wrote comes back beside the group, or
        None when it did not write them. Three turns when another worker holds the rate for a
        while: the marks are rolled back (and the answers with them), the slots reserved alone,
        and the group marked once they come.

        The others were given back: their mailing was paused, cancelled or ended, their client
        deleted or opted out (then skipped), or the stop came while waiting for the rate.
        """
        ids = [report.id for report in group]
        together = await self._mark_if_slots_are_free(ids, answers)
        if together is not None:
            marked, reservation, written = together
        else:  # the shared rate is taken for now: reserve, wait, then mark
            written = None  # rolled back with the marks
            async with begin_write(self.database) as connection:
                reservation = await self.limiter.reserve(connection, len(ids))
            if await _stopped_before(reservation.first_at, stop):
                await self.release(ids)
                return [], written
            async with begin_write(self.database) as connection:
                marked = await self._mark(connection, ids)
        ready = (report for report in group if report.id in marked)
        # The terms as they are now: the mailing may have been edited since the claim.
        handed = [
            Handed(report, marked[report.id], reservation.slot(index))
            for index, report in enumerate(ready)
        ]
        return handed, written

    async def release(self, report_ids: list[int]) -> None:
        """Give back the leases on reports never handed over."""
        async with begin_write(self.database) as connection:
            await repository.release(connection, report_ids, owner=self.owner)

    async def _mark_if_slots_are_free(
        self, ids: list[int], answers: Sequence[Settlement]
    ) -> tuple[dict[int, MailingTerms], Reservation, int] | None:
        """Settle, mark and reserve in one transaction, unless the slots are not free at once.

        The common case costs one round trip. When other workers hold the rate for a while,
        the transaction is rolled back (None): a report must not wait in ``sending`` for its
        slot.
        """
        async with writer_turn(self.database), self.database.connect() as connection:
            async with connection.begin() as transaction:
                written = 0
                if answers:
                    now = self.clock.now()
                    written = await repository.settle(
                        connection, answers, owner=self.owner, now=now
                    )
                marked = await self._mark(connection, ids)
                reservation = await self.limiter.reserve(connection, max(1, len(marked)))
                if reservation.delay() > PROMPT:
                    await transaction.rollback()
                    return None
            return marked, reservation, written

    async def _mark(self, connection: AsyncConnection, ids: list[int]) -> dict[int, MailingTerms]:
        now = self.clock.now()
        marked = await repository.hand_over(
            connection,
            ids,
            owner=self.owner,
            provider=self.provider_name,
            now=now,
            lease_until=now + self.lease,
        )
        # Not marked: its mailing was paused, cancelled or ended, or its client deleted or
        # opted out (then it is skipped here, not released to be claimed again).
        left = [i for i in ids if i not in marked]
        if left:
            await repository.skip_opted_out(connection, left, owner=self.owner, now=now)
        await repository.release(connection, left, owner=self.owner)
        return marked


async def _stopped_before(monotonic_at: float, stop: asyncio.Event) -> bool:
    """Wait until ``monotonic_at``; True if ``stop`` was set first."""
    delay = monotonic_at - time.monotonic()
    if delay > 0 and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            return False
    return stop.is_set()
