"""One global send rate shared by every worker of a database, without a coordinator process.

``SMS_SENDER_RATE_LIMIT`` messages per second is a property of the account at the gateway, so
it caps the sum over all workers, on all machines. The limit is a GCRA ("generic cell rate
algorithm", the virtual-scheduling form of a leaky bucket) whose whole state is one row of
``rate_limits``: ``next_slot_at``, the earliest moment the next message may leave.

A worker about to send ``n`` messages reserves ``n`` consecutive slots with one statement::

    UPDATE rate_limits SET next_slot_at = max(next_slot_at, now) + n / rate
    RETURNING next_slot_at - n / rate - now      -- seconds until the first reserved slot

and sends its ``k``-th message at ``first slot + k / rate`` by its own monotonic clock. The
UPDATE takes the row's lock, so concurrent reservations queue up and get disjoint stretches
of the timeline: the sends of all workers together never exceed ``rate`` per second, and an
idle limiter lets the next message go at once. On PostgreSQL ``now`` is the database server's
clock, so machines whose clocks disagree still share one timeline; on SQLite (one machine) it
is the local clock. Reserved slots a worker does not use (its mailing was paused meanwhile,
it crashed) are simply lost: the limit errs on the side of sending slower, never faster.

A worker reserves for a small group at a time (what its free concurrency allows, and no more
than ``GROUP_SECONDS`` of the rate), so reservations stay fair between workers and a pause
takes effect within that horizon. When the slots are free at once the reservation shares a
transaction with marking the group ``sending`` (:mod:`sms_sender.dispatch.handover`): one
write turn per group. So a worker does not ask for slots it knows are taken: it remembers where
its own last reservation ends (:meth:`RateLimiter.free_in`) and hands over its next group only
when that is at most ``PROMPT`` away; alone on the timeline (SQLite's one worker) its slots
are then always free at once. When other workers hold the timeline further, the marks are
rolled back, the worker commits the reservation alone, waits for its first slot, and only then
marks the group, so no report sits in ``sending`` waiting for the rate longer than ``PROMPT``
plus its place in the group.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import BindParameter, Double, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender import dialects
from sms_sender.dispatch.models import RateLimit

SEND_LIMIT = "send"
# How far ahead one reservation may reach: it bounds both a group's size and how long a
# report marked ``sending`` may wait for its slot.
GROUP_SECONDS = 0.1
# A reservation whose first slot is at most this far off counts as "free now", and a worker
# asks for its next slots this long before its own last ones run out. Asked later, the time its
# write turn waits (behind the API's write on SQLite) would leave the timeline unused meanwhile.
PROMPT = 0.025


@dataclass(frozen=True, slots=True)
class Reservation:
    """Consecutive send slots: the ``k``-th starts at ``first_at + k * interval`` (monotonic).

    ``starts_at`` is the first slot on the shared timeline (the database's epoch seconds).
    """

    first_at: float
    interval: float
    count: int
    starts_at: float

    def slot(self, index: int) -> float:
        return self.first_at + index * self.interval

    def delay(self) -> float:
        """Seconds from now until the first slot."""
        return self.first_at - time.monotonic()

    @property
    def ends_at(self) -> float:
        """When the last slot is over (monotonic): the timeline is free from then."""
        return self.first_at + self.count * self.interval


class RateLimiter:
    """Reserves send slots on the shared timeline of one database; see the module docstring."""

    def __init__(self, rate: float, name: str = SEND_LIMIT) -> None:
        self.rate = rate
        self.name = name
        self._own_until = 0.0  # monotonic: when this limiter's last reservation ends

    def free_in(self) -> float:
        """Seconds until a reservation could start within ``PROMPT``, as far as this limiter knows.

        Only its own reservations are known here: other workers' may hold the timeline longer
        (then the reservation is not prompt, see handover), never shorter.
        """
        return self._own_until - PROMPT - time.monotonic()

    def group_size(self) -> int:
        """The most messages one reservation should cover."""
        return max(1, int(self.rate * GROUP_SECONDS))

    async def ensure_row(self, connection: AsyncConnection) -> None:
        """Create the limiter's row if this database has none yet (idempotent)."""
        await connection.execute(
            dialects.insert_ignoring_conflicts(connection, RateLimit, ("name",)).values(
                name=self.name, next_slot_at=0.0
            )
        )

    async def reserve(self, connection: AsyncConnection, count: int) -> Reservation:
        """Reserve ``count`` slots, in the caller's transaction (commit it promptly)."""
        span: BindParameter[float] = bindparam("span", count / self.rate, type_=Double())
        # By the database's clock, read by the statement itself, not passed in, so time spent
        # waiting for the row's lock does not count as time already waited.
        now = dialects.now_epoch_seconds(connection)
        later = dialects.greatest(connection, RateLimit.next_slot_at, now)
        reserved = (
            await connection.execute(
                update(RateLimit)
                .where(RateLimit.name == self.name)
                .values(next_slot_at=later + span)
                .returning(RateLimit.next_slot_at - span, RateLimit.next_slot_at - span - now)
            )
        ).one_or_none()
        if reserved is None:
            raise LookupError(f"rate limit row {self.name!r} is missing; call ensure_row first")
        starts_at, wait = reserved
        reservation = Reservation(
            time.monotonic() + max(0.0, wait), 1.0 / self.rate, count, starts_at
        )
        self._own_until = max(self._own_until, reservation.ends_at)
        return reservation


async def wait_for_slot(slot_at: float) -> None:
    """Sleep until the monotonic instant ``slot_at`` (at once if it has passed)."""
    delay = slot_at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
