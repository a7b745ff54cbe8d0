"""``sms-sender worker`` with a provider that answers at once, for the engine-ceiling figures.

``python -m benchmarks.worker`` reads the ``SMS_SENDER_*`` settings and runs the same
:class:`~sms_sender.dispatch.engine.DeliveryEngine` as ``sms-sender worker`` (scheduler, worker,
LISTEN wake-ups on PostgreSQL) until SIGTERM, except that every message is accepted without
doing anything: what is left to measure is the claim, hand-over and settle path alone. Figures
that send through a gateway run the real ``sms-sender worker``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

from sms_sender.cli import run_event_loop
from sms_sender.clock import SystemClock
from sms_sender.config import Settings
from sms_sender.db import Notifier, create_engine, create_sessionmaker
from sms_sender.dispatch.engine import DeliveryEngine
from sms_sender.dispatch.runtime import WORKER_DATABASE_OPTIONS
from sms_sender.logging import configure_logging
from sms_sender.providers import NO_TEXT_LIMITS, OutgoingMessage, SendResult


class InstantProvider:
    """Accepts every message at once: what is left to measure is the engine itself."""

    name = "instant"
    idempotent = True
    text_limits = NO_TEXT_LIMITS

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        accepted = SendResult.accepted()
        return [accepted] * len(batch)


async def run() -> None:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    engine = create_engine(settings.database_url, **WORKER_DATABASE_OPTIONS)
    notifier = Notifier()
    stop = _stop_on_signals()
    try:
        delivery = DeliveryEngine(
            settings=settings,
            sessionmaker=create_sessionmaker(engine, notifier),
            notifier=notifier,
            clock=SystemClock(),
            provider=InstantProvider(),
        )
        await delivery.run(stop)
    finally:
        await engine.dispose()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


if __name__ == "__main__":
    run_event_loop(run())
