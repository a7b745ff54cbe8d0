"""A worker process for the engine figures: the real Worker, with the provider a figure needs.

``python -m benchmarks.worker --provider instant|configured`` reads ``SMS_SENDER_*`` settings
like ``sms-sender worker`` and runs :class:`sms_sender.dispatch.worker.Worker` until SIGTERM.
``instant`` accepts every message without doing anything, so the engine ceiling measures the
claim, hand-over and settle path alone; ``configured`` builds the provider the settings name
(``http`` to the fake gateway), exactly as the service does.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

from sms_sender.clock import SystemClock
from sms_sender.config import Settings
from sms_sender.db import Notifier, create_engine, create_sessionmaker
from sms_sender.dispatch.wakeups import PostgresListener
from sms_sender.dispatch.worker import Worker
from sms_sender.logging import configure_logging
from sms_sender.providers import Provider, SendResult, build_provider, create_http_client
from sms_sender.providers.base import OutgoingMessage

INSTANT = "instant"
CONFIGURED = "configured"


class InstantProvider:
    """Accepts every message at once: what is left to measure is the engine itself."""

    name = "instant"
    idempotent = True

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        accepted = SendResult.accepted()
        return [accepted] * len(batch)


async def run(provider_choice: str) -> None:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    engine = create_engine(settings.database_url)
    notifier = Notifier()
    stop = _stop_on_signals()
    try:
        async with create_http_client(settings) as http_client:
            provider: Provider = (
                InstantProvider()
                if provider_choice == INSTANT
                else build_provider(settings, http_client)
            )
            worker = Worker(
                settings=settings,
                sessionmaker=create_sessionmaker(engine, notifier),
                provider=provider,
                clock=SystemClock(),
                notifier=notifier,
            )
            loops = [worker.run(stop)]
            if engine.dialect.name == "postgresql":
                # Hear other processes' NOTIFYs, as ``sms-sender worker`` does.
                loops.append(PostgresListener(settings.database_url, notifier).run(stop))
            await asyncio.gather(*loops)
    finally:
        await engine.dispose()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--provider", choices=[INSTANT, CONFIGURED], default=CONFIGURED)
    args = parser.parse_args(argv)
    asyncio.run(run(args.provider))


if __name__ == "__main__":
    main()
