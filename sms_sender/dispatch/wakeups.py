"""Wake-ups for the engine's loops: the stop event, and PostgreSQL NOTIFYs from other processes.

Within one process, a committed change fires the :class:`~sms_sender.db.Notifier` directly.
Across processes (an API process creating a mailing that a worker process must start),
``db.notify`` also issues ``pg_notify`` in the same transaction; :class:`PostgresListener`
holds one dedicated asyncpg connection that LISTENs on the engine's channels and fires the local
notifier for each NOTIFY. The connection is checked every few seconds and re-opened when lost;
after every (re)connection all channels are fired, since notifications sent while it was down
are gone. The loops also poll every few seconds, so a missed notification costs a few seconds,
never a mailing.

asyncpg is imported by the listener when it runs, not at the top: a SQLite worker never listens,
and the driver is about 3 MB of its memory (issue 17; tests/test_cli.py checks it stays out).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import structlog

from sms_sender.db import CHANNEL_MAILINGS, CHANNEL_REPORTS, Notifier, normalise_url

# Seconds a loop waits before trying again after losing the database (each loop's default).
RETRY_AFTER_ERROR = 2.0

_log = structlog.get_logger(__name__)


async def set_when(stop: asyncio.Event, wake: asyncio.Event) -> None:
    """Set ``wake`` once ``stop`` is set, so a loop asleep on ``wake`` notices shutdown."""
    await stop.wait()
    wake.set()


async def wait_or_stop(seconds: float, stop: asyncio.Event) -> None:
    """Sleep ``seconds`` of real time, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class PostgresListener:
    """LISTEN on the engine's channels and fire the in-process notifier for each NOTIFY."""

    def __init__(
        self,
        database_url: str,
        notifier: Notifier,
        *,
        channels: Sequence[str] = (CHANNEL_MAILINGS, CHANNEL_REPORTS),
        check_every: float = 5.0,
        retry_after: float = 2.0,
    ) -> None:
        url = normalise_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._notifier = notifier
        self._channels = tuple(channels)
        self._check_every = check_every
        self._retry_after = retry_after
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        import asyncpg

        while not stop.is_set():
            try:
                await self._listen(stop)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                self.connected.clear()
                _log.warning(
                    "LISTEN connection lost; reconnecting",
                    error=repr(exc),
                    retry_in=self._retry_after,
                )
                await wait_or_stop(self._retry_after, stop)

    async def _listen(self, stop: asyncio.Event) -> None:
        import asyncpg

        connection = await asyncpg.connect(self._dsn, timeout=self._check_every)
        try:
            for channel in self._channels:
                await connection.add_listener(channel, self._on_notification)
            self.connected.set()
            for channel in self._channels:  # whatever was said while we were away
                self._notifier.fire(channel)
            while not stop.is_set():
                await wait_or_stop(self._check_every, stop)
                # A silently dropped connection hears nothing; a query notices.
                await connection.fetchval("SELECT 1", timeout=self._check_every)
        finally:
            self.connected.clear()
            with contextlib.suppress(OSError, asyncpg.InterfaceError, TimeoutError):
                await asyncio.wait_for(connection.close(), self._check_every)

    def _on_notification(self, _connection: Any, _pid: int, channel: str, _payload: str) -> None:
        self._notifier.fire(channel)
