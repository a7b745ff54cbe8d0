"""Heartbeats: a dead worker's leases are taken over in seconds, not when they run out.

Every worker counts a beat in ``worker_heartbeats`` every ``interval`` and watches the others'.
A worker is dead when

* its count has not moved for ``dead_after`` seconds, measured by the watcher's own monotonic
  clock (machines' clocks may disagree; a count either moves or it does not), or
* its id (``host:pid:random``, see :func:`new_worker_id`) names this
  host and a pid that no longer runs: a restarted ``serve`` sees its predecessor is gone at
  once, without waiting even ``dead_after``.

A dead worker's ``sending`` reports become ``unknown`` (or go back to ``pending`` for an
idempotent provider) and its claimed ones are released, exactly as when their leases expire
(:func:`repository.reclaim`), and its row is removed. A worker that was only stalled for longer
than ``dead_after`` finds its leases gone: every write it makes names the lease owner it
expects, so it overwrites nothing, and its next beat registers it again. Workers of an older
release, which do not beat, are never judged: their leases run out as before.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.clock import Clock
from sms_sender.dialects import begin_write
from sms_sender.dispatch import repository
from sms_sender.dispatch.wakeups import wait_or_stop

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class HeartbeatTuning:
    interval: float = 1.0  # seconds between two beats (and two looks at the others)
    dead_after: float = 5.0  # seconds without a beat after which a worker counts as dead


class Heartbeat:
    """Beats for one worker and takes over the leases of dead ones; ``run(stop)``."""

    def __init__(
        self,
        *,
        database: AsyncEngine,
        clock: Clock,
        worker_id: str,
        resendable_provider: str | None,
        on_take_over: Callable[[], None],
        tuning: HeartbeatTuning | None = None,
    ) -> None:
        self._database = database
        self._clock = clock
        self._worker_id = worker_id
        self._resendable_provider = resendable_provider
        self._on_take_over = on_take_over
        self._tuning = tuning or HeartbeatTuning()
        self._seen: dict[str, tuple[int, float]] = {}  # worker -> (beats, when they last moved)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self.tick()
                await wait_or_stop(self._tuning.interval, stop)
        finally:
            async with begin_write(self._database) as connection:
                await repository.forget(connection, [self._worker_id])

    async def tick(self) -> list[str]:
        """Beat once, and take over the leases of the workers found dead; their ids."""
        now = self._clock.now()
        async with begin_write(self._database) as connection:
            await repository.beat(connection, self._worker_id, now=now)
            dead = self._dead(await repository.beats(connection))
            if not dead:
                return []
            taken_over = await repository.reclaim(
                connection,
                now=now,
                in_flight=[],
                resendable_provider=self._resendable_provider,
                dead_owners=dead,
            )
            released = await repository.release_claims_of(connection, dead, now=now)
            await repository.forget(connection, dead)
        for worker_id in dead:
            self._seen.pop(worker_id, None)
        for report in taken_over:
            _log.warning(
                "took over a send of a dead worker",
                mailing_id=report.mailing_id,
                report_id=report.report_id,
                client_id=report.client_id,
                status=report.status,
            )
        _log.warning(
            "took over the leases of dead workers",
            dead_workers=dead,
            taken_over=len(taken_over),
            released=released,
        )
        self._on_take_over()
        return dead

    def _dead(self, counts: dict[str, int]) -> list[str]:
        """The workers among ``counts`` (id -> beats) that are dead; see the module docstring."""
        now = time.monotonic()
        dead = []
        for worker_id, beats in counts.items():
            if worker_id == self._worker_id:
                continue
            last_beats, moved_at = self._seen.get(worker_id, (-1, now))
            if beats != last_beats:
                self._seen[worker_id] = (beats, now)
            elif now - moved_at >= self._tuning.dead_after:
                dead.append(worker_id)
                continue
            if process_gone(worker_id):
                dead.append(worker_id)
        for gone in self._seen.keys() - counts.keys():
            del self._seen[gone]
        return dead


def new_worker_id() -> str:
    """Unique per worker instance, readable in the reports table (host, pid, random)."""
    return f"{_host()}:{os.getpid()}:{secrets.token_hex(4)}"


def _host() -> str:
    return socket.gethostname()[:40]


def process_gone(worker_id: str) -> bool:
    """Whether ``worker_id`` names a process of this host that no longer runs."""
    parts = worker_id.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid = parts[0], int(parts[1])
    if host != _host() or pid == os.getpid():
        # Another host's pids say nothing here; our own pid under another id is a predecessor
        # that had the same pid (a container's pid 1): only its heartbeat can tell.
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False
