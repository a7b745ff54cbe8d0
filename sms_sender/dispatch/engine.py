"""DeliveryEngine: the scheduler, a worker, (when the provider can tell) the delivery poller and
(when someone is to hear of it) the notifications loop: daily reports and alerts.

``sms-sender serve`` runs it in a child process of the API (:mod:`sms_sender.dispatch.child`);
``sms-sender worker`` runs it alone, as many times as wanted against one PostgreSQL. It is
built from what the process already owns (settings, sessionmaker and its notifier, clock,
provider) and runs until its stop event is set, then shuts down gracefully (see
:mod:`sms_sender.dispatch.worker`).

A database that cannot be reached does not stop the engine: each loop logs the error and tries
again a moment later. Any other exception is a bug and stops the engine with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender import dialects
from sms_sender.clock import Clock
from sms_sender.config import Settings
from sms_sender.db import Notifier
from sms_sender.dispatch.heartbeat import Heartbeat, HeartbeatTuning
from sms_sender.dispatch.repository import UNAVAILABLE
from sms_sender.dispatch.retry import RetryPolicy
from sms_sender.dispatch.scheduler import Scheduler
from sms_sender.dispatch.tracking import DeliveryPoller
from sms_sender.dispatch.wakeups import RETRY_AFTER_ERROR, PostgresListener, wait_or_stop
from sms_sender.dispatch.worker import Worker, WorkerTuning
from sms_sender.notifications.service import notifications_wanted
from sms_sender.providers.base import Provider
from sms_sender.providers.registry import delivery_tracker

if TYPE_CHECKING:
    from sms_sender.notifications.loop import NotificationLoop

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EngineTuning:
    """Timings with sensible defaults; tests shorten some."""

    worker: WorkerTuning = field(default_factory=WorkerTuning)
    heartbeat: HeartbeatTuning = field(default_factory=HeartbeatTuning)
    scheduler_poll: timedelta = timedelta(seconds=5)
    delivery_poll: timedelta = timedelta(seconds=30)
    # After a database error: the scheduler's, the worker's and the engine's own loop.
    retry_after_error: float = RETRY_AFTER_ERROR


class DeliveryEngine:
    """Sends every mailing on time: ``await run(stop)``, or ``async with running()``."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        notifier: Notifier,
        clock: Clock,
        provider: Provider,
        tuning: EngineTuning | None = None,
        retry: RetryPolicy | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.tuning = tuning or EngineTuning()
        self.settings = settings
        self.notifier = notifier
        self.scheduler = Scheduler(
            sessionmaker=sessionmaker,
            clock=clock,
            notifier=notifier,
            poll_interval=self.tuning.scheduler_poll,
            retry_after_error=self.tuning.retry_after_error,
        )
        database: AsyncEngine = sessionmaker.kw["bind"]
        self.worker = Worker(
            settings=settings,
            database=database,
            provider=provider,
            clock=clock,
            notifier=notifier,
            tuning=self.tuning.worker,
            retry=retry,
            retry_after_error=self.tuning.retry_after_error,
            worker_id=worker_id,
        )
        self.heartbeat = Heartbeat(
            database=database,
            clock=clock,
            worker_id=self.worker.id,
            resendable_provider=provider.name if provider.idempotent else None,
            on_take_over=self.worker.wake,
            tuning=self.tuning.heartbeat,
        )
        tracker = delivery_tracker(provider)
        self.delivery_poller = (
            DeliveryPoller(
                database=database,
                clock=clock,
                tracker=tracker,
                provider_name=provider.name,
                batch_size=settings.batch_size,
                interval=self.tuning.delivery_poll,
            )
            if tracker is not None
            else None
        )
        self.notifications: NotificationLoop | None = None
        if notifications_wanted(settings):
            # Imported only when someone is to hear: the loop's wires (httpx, jinja2,
            # aiosmtplib) are about 5 MB of a worker that sends no notification (issue 17).
            from sms_sender.notifications.loop import NotificationLoop

            self.notifications = NotificationLoop(
                settings=settings, database=database, clock=clock, owner=self.worker.id
            )
        self.listener = (
            PostgresListener(settings.database_url, notifier)
            if dialects.listens_across_processes(database)
            else None
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; returns once in-flight sends are recorded."""
        with structlog.contextvars.bound_contextvars(worker_id=self.worker.id):
            await self._run_loops(stop)

    async def _run_loops(self, stop: asyncio.Event) -> None:
        _log.info("delivery engine started", provider=self.worker.provider_name)
        loops: list[tuple[str, Callable[[asyncio.Event], Awaitable[None]]]] = [
            ("scheduler", self.scheduler.run),
            ("worker", self.worker.run),
            ("heartbeat", self.heartbeat.run),
        ]
        if self.delivery_poller is not None:
            loops.append(("delivery poller", self.delivery_poller.run))
        if self.notifications is not None:  # its own task: a slow mail server holds only it
            loops.append(("notifications", self.notifications.run))
        if self.listener is not None:
            loops.append(("listener", self.listener.run))
        async with asyncio.TaskGroup() as group:
            for name, loop in loops:
                group.create_task(self._keep_running(name, loop, stop))
        _log.info("delivery engine stopped")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[DeliveryEngine]:
        """Run in the background for the duration of the block, then stop gracefully."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop))
        try:
            yield self
        finally:
            stop.set()
            await task

    async def _keep_running(
        self, name: str, loop: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            try:
                await loop(stop)
            except UNAVAILABLE as exc:  # e.g. the database was down at start-up
                _log.warning(
                    "database unavailable; the loop starts again shortly",
                    loop=name,
                    error=repr(exc),
                    retry_in=self.tuning.retry_after_error,
                )
                await wait_or_stop(self.tuning.retry_after_error, stop)
            except Exception:
                # A bug: say so now (``serve`` only awaits the engine at exit), then stop.
                _log.exception("delivery engine loop crashed; stopping the engine", loop=name)
                raise
