"""Outcomes of sends, written to their reports in batches while the worker keeps sending.

Answers arrive one by one; each waits here at most ``linger`` seconds (or until ``batch_size``
have gathered) and is then written with the others in one statement, by a background task, so
the worker hands over the next group while the database records the last. One write runs at a
time. A write that fails keeps its batch for the next attempt and raises its error from the
next call, so the worker's loop sees a lost database (and backs off) or a bug (and stops).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender import metrics
from sms_sender.clock import Clock
from sms_sender.dialects import begin_write
from sms_sender.dispatch import repository
from sms_sender.dispatch.repository import Settlement, fit
from sms_sender.dispatch.scheduler import log_finished
from sms_sender.reports import lifecycle
from sms_sender.reports.models import ERROR_SIZE

_log = structlog.get_logger(__name__)


class Results:
    """Settlements of one worker waiting to be written; see the module docstring."""

    def __init__(
        self,
        *,
        database: AsyncEngine,
        clock: Clock,
        owner: str,
        provider_name: str,
        batch_size: int,
        linger: float,
    ) -> None:
        self._database = database
        self._clock = clock
        self._owner = owner
        self._provider_name = provider_name
        self._batch_size = batch_size
        self._linger = linger
        self._waiting: list[Settlement] = []
        self._in_write: list[Settlement] = []
        self._first_added_at = 0.0
        self._writing: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._paused: list[int] = []

    @property
    def urgent(self) -> bool:
        """Whether a waiting result pauses its mailing: it must be written before more sends."""
        return any(settlement.pauses_mailing for settlement in self._waiting)

    def take_paused(self) -> list[int]:
        """Mailings paused by the writes since the last call (their held reports must go back)."""
        paused, self._paused = self._paused, []
        return paused

    def report_ids(self) -> list[int]:
        """Reports whose outcome is known here but not yet written (they are still ours)."""
        return [settlement.report_id for settlement in (*self._in_write, *self._waiting)]

    def add(self, settlement: Settlement) -> None:
        if not self._waiting:
            self._first_added_at = time.monotonic()
        self._waiting.append(settlement)

    def write_when_due(self) -> None:
        """Start a background write if enough has gathered or waited long enough."""
        self._raise_failure()
        if self._writing is not None or not self._waiting:
            return
        lingered = time.monotonic() - self._first_added_at >= self._linger
        if lingered or len(self._waiting) >= self._batch_size:
            self._writing = asyncio.create_task(self._write_waiting())

    async def flush(self) -> None:
        """Write everything gathered so far, waiting for a write in progress first."""
        if self._writing is not None:
            await asyncio.wait([self._writing])
        self._raise_failure()
        if self._waiting:
            self._writing = asyncio.create_task(self._write_waiting())
            await asyncio.wait([self._writing])
            self._raise_failure()

    async def _write_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        self._in_write = batch
        try:
            await self._write(batch)
        except BaseException as exc:  # re-raised by the next call; nothing is lost meanwhile
            self._waiting[:0] = batch
            self._failure = exc
        finally:
            self._in_write = []
            self._writing = None

    async def _write(self, batch: list[Settlement]) -> None:
        now = self._clock.now()
        mailing_ids = sorted({settlement.mailing_id for settlement in batch})
        written = await self._record(batch, now)
        # Whether a mailing is done is asked only after the commit. Asked inside it, two workers
        # settling a mailing's last reports at once would each still see the other's reports
        # `sending` (neither has committed) and neither would finish it. Of two such checks,
        # the later one starts after both commits and sees every report settled.
        async with begin_write(self._database) as connection:
            finished = await repository.finish_mailings(connection, now, mailing_ids)
        _log_settled(self._provider_name, batch)
        if written < len(batch):
            _log.warning(
                "some results were not written: their reports changed meanwhile "
                "(cancelled, expired or reclaimed)",
                mailing_ids=mailing_ids,
                skipped=len(batch) - written,
            )
        log_finished(finished, now)

    async def _record(self, batch: Sequence[Settlement], now: datetime) -> int:
        """Write the batch in one transaction; a row the database refuses is failed on its own.

        Refused data (too long, a broken constraint) is a bug of one row, not an outage: the
        batch is halved until the row is alone, everything else is written, and that row is
        written with the database's reason instead (``unknown`` if the gateway accepted it or
        may have it, else ``failed``: see lifecycle.unrecorded), so the worker keeps going.
        """
        try:
            return await self._record_together(batch, now)
        except repository.UNAVAILABLE as exc:
            if not repository.is_bad_data(exc):
                raise
            if len(batch) > 1:
                half = len(batch) // 2
                return await self._record(batch[:half], now) + await self._record(batch[half:], now)
            [refused] = batch
            _log.error(
                "the database refused a result; recorded as unknown or failed instead",
                mailing_id=refused.mailing_id,
                report_id=refused.report_id,
                exc_info=exc,
            )
            return await self._record_together([_unrecordable(refused, exc)], now)

    async def _record_together(self, batch: Sequence[Settlement], now: datetime) -> int:
        pauses = {s.mailing_id: s.error or "no funds" for s in batch if s.pauses_mailing}
        async with begin_write(self._database) as connection:
            written = await repository.settle(connection, batch, owner=self._owner, now=now)
            paused = await repository.pause_mailings(connection, pauses, now=now)
        self._paused += paused
        for mailing_id in paused:
            metrics.MAILINGS_PAUSED.labels(self._provider_name).inc()
            _log.warning(
                "mailing paused: the provider's account cannot pay; resume it after a top-up",
                mailing_id=mailing_id,
                reason=pauses[mailing_id],
            )
        return written

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure


def _unrecordable(settlement: Settlement, error: Exception) -> Settlement:
    """The settlement of a result the database refused: unknown if the gateway may have it."""
    # The driver's first line says what was wrong ("value too long for type …"); asyncpg's
    # errors come prefixed with their class, which says nothing to an operator.
    said = str(getattr(error, "orig", error)).splitlines()[0].split(">: ", 1)[-1]
    status, reason = lifecycle.unrecorded(settlement.status, said)
    return Settlement(
        report_id=settlement.report_id,
        mailing_id=settlement.mailing_id,
        client_id=settlement.client_id,
        status=status,
        error=fit(reason, ERROR_SIZE),
    )


def _log_settled(provider: str, settled: Iterable[Settlement]) -> None:
    """Count every result, and log one line per mailing and status with the report ids."""
    groups: dict[tuple[int, str], list[int]] = {}
    for settlement in settled:
        groups.setdefault((settlement.mailing_id, settlement.status), []).append(
            settlement.report_id
        )
    for (mailing_id, status), report_ids in groups.items():
        metrics.MESSAGES.labels(provider, status).inc(len(report_ids))
        _log.info(
            "messages settled",
            mailing_id=mailing_id,
            status=status,
            count=len(report_ids),
            report_ids=report_ids,
        )
