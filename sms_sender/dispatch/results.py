"""Recording settlements in batches: one statement per batch, then "is the mailing finished?".

The worker gathers its answers in :class:`Unrecorded`, which writes them a batch at a time in
the background while the worker goes on sending (see :mod:`sms_sender.dispatch.worker`). A
batch is written by :class:`Recorder` in one transaction, guarded so that a report cancelled
or reclaimed meanwhile is not overwritten. A row the database refuses is a bug of that row, not
an outage: the batch is halved until the row is alone. Any other error is raised for the
worker's loop (a lost database: it backs off; a bug: it stops), and the batch is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender import metrics
from sms_sender.clock import Clock
from sms_sender.dialects import begin_write, read_only
from sms_sender.dispatch import repository
from sms_sender.dispatch.repository import fit
from sms_sender.dispatch.scheduler import log_finished
from sms_sender.dispatch.types import Settlement
from sms_sender.reports import lifecycle
from sms_sender.reports.models import ERROR_SIZE

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Recorder:
    """Writes one worker's settlements; holds no state between batches."""

    database: AsyncEngine
    clock: Clock
    owner: str
    provider_name: str
    _reader: AsyncEngine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_reader", read_only(self.database))

    async def record(self, batch: Sequence[Settlement]) -> list[int]:
        """Write the batch, then finish its mailings if done; the mailings it paused."""
        now = self.clock.now()
        paused: list[int] = []
        written = await self._record(batch, now, paused)
        await self.recorded(batch, written, now)
        return paused

    async def recorded(self, batch: Sequence[Settlement], written: int, now: datetime) -> None:
        """After the commit that wrote ``batch``: finish its mailings if done; count and log it.

        Whether a mailing is done is asked only after the commit. Asked inside it, two workers
        settling a mailing's last reports at once would each still see the other's reports
        ``sending`` (neither has committed) and neither would finish it. Of two such checks,
        the later one starts after both commits and sees every report settled. It is asked
        with a read first: most batches leave their mailing unfinished, and a write turn each
        for nothing would hold up the API's writes on SQLite.
        """
        mailing_ids = sorted({settlement.mailing_id for settlement in batch})
        async with self._reader.connect() as connection:
            over = await repository.mailings_over(connection, now, mailing_ids)
        finished: list[repository.Finished] = []
        if over:
            async with begin_write(self.database) as connection:
                finished = await repository.finish_mailings(connection, now, over)
        _log_settled(self.provider_name, batch)
        if written < len(batch):
            _log.warning(
                "some results were not written: their reports changed meanwhile "
                "(cancelled, expired or reclaimed)",
                mailing_ids=mailing_ids,
                skipped=len(batch) - written,
            )
        log_finished(finished, now)

    async def _record(self, batch: Sequence[Settlement], now: datetime, paused: list[int]) -> int:
        """Write the batch in one transaction; a row the database refuses is written on its own.

        Refused data (too long, a broken constraint) is a bug of one row, not an outage: the
        batch is halved until the row is alone, everything else is written, and that row is
        written with the database's reason instead (``unknown`` if the gateway accepted it or
        may have it, else ``failed``: see lifecycle.unrecorded), so the worker keeps going.
        """
        try:
            return await self._record_together(batch, now, paused)
        except repository.UNAVAILABLE as exc:
            if not repository.is_bad_data(exc):
                raise
            if len(batch) > 1:
                half = len(batch) // 2
                first = await self._record(batch[:half], now, paused)
                return first + await self._record(batch[half:], now, paused)
            [refused] = batch
            # The driver's first line says what was wrong ("value too long for type …"); no
            # traceback: the statement is always the settle, and the row's data is the bug.
            said = _first_line(exc)
            _log.error(
                "the database refused a result; recorded as unknown or failed instead",
                mailing_id=refused.mailing_id,
                report_id=refused.report_id,
                reason=said,
            )
            return await self._record_together([_unrecordable(refused, said)], now, paused)

    async def _record_together(
        self, batch: Sequence[Settlement], now: datetime, paused: list[int]
    ) -> int:
        pauses = {s.mailing_id: s.error or "no funds" for s in batch if s.pauses_mailing}
        async with begin_write(self.database) as connection:
            written = await repository.settle(connection, batch, owner=self.owner, now=now)
            paused_now = await repository.pause_mailings(connection, pauses, now=now)
        paused += paused_now
        for mailing_id in paused_now:
            metrics.MAILINGS_PAUSED.labels(self.provider_name).inc()
            _log.warning(
                "mailing paused: the provider's account cannot pay; resume it after a top-up",
                mailing_id=mailing_id,
                reason=pauses[mailing_id],
            )
        return written


class Unrecorded:
    """Answers waiting to be written, and the one write in progress in the background.

    Most answers are written by the next hand-over, in its transaction (one write turn for
    both, see :meth:`for_hand_over`): while the worker holds reports to hand over, a batch is
    written on its own only once it waited ``hand_over_linger`` (or filled), else ``linger``.
    A crash before either commit loses the answers exactly as before: their reports stay
    ``sending`` and are reclaimed as ``unknown``.
    """

    def __init__(
        self, recorder: Recorder, *, batch_size: int, linger: float, hand_over_linger: float
    ) -> None:
        self._recorder = recorder
        self._batch_size = batch_size
        self._linger = linger
        self._hand_over_linger = hand_over_linger
        self._waiting: list[Settlement] = []
        self._waiting_since = 0.0
        self._writing: tuple[list[Settlement], asyncio.Task[list[int]]] | None = None
        self._after_hand_overs: list[asyncio.Task[None]] = []
        self._alone = False  # a hand-over that wrote answers failed: write them on their own
        self.pausing = False  # a waiting answer pauses its mailing: write it before more sends

    def add(self, answers: list[Settlement]) -> None:
        if answers and not self._waiting:
            self._waiting_since = time.monotonic()
        self._waiting += answers
        self.pausing = self.pausing or any(answer.pauses_mailing for answer in answers)

    def report_ids(self) -> list[int]:
        """Reports whose outcome is known here but not yet written (they are still ours)."""
        writing = self._writing[0] if self._writing is not None else []
        return [settlement.report_id for settlement in (*writing, *self._waiting)]

    def for_hand_over(self) -> list[Settlement]:
        """The waiting answers, for the next hand-over to write in its transaction.

        None while one pauses its mailing (that is written first, on its own, and the
        hand-over then sees the mailing paused), nor after such a write failed: the batch
        then goes alone, where a row the database refuses is found and written apart.
        """
        if self.pausing or self._alone:
            return []
        taken, self._waiting = self._waiting[: self._batch_size], self._waiting[self._batch_size :]
        return taken

    def after_hand_over(self, answers: list[Settlement], written: int | None) -> None:
        """The hand-over wrote ``answers`` (``written`` of them), or did not (None)."""
        if written is None:
            self._waiting[:0] = answers
            return
        if answers:
            now = self._recorder.clock.now()
            self._after_hand_overs.append(
                asyncio.create_task(self._recorder.recorded(answers, written, now))
            )

    def hand_over_failed(self, answers: list[Settlement]) -> None:
        self._waiting[:0] = answers
        self._alone = self._alone or bool(answers)

    async def write_when_due(self, *, hand_over_next: bool = False) -> list[int]:
        """Start a write once enough gathered or waited; the mailings the last write paused.

        ``hand_over_next``: a hand-over is likely soon, and may write them in its turn.
        """
        paused = await self._finish_write(wait=False)
        await self._after_hand_overs_done(wait=False)
        merging = hand_over_next and not self._alone
        linger = max(self._linger, self._hand_over_linger) if merging else self._linger
        lingered = time.monotonic() - self._waiting_since >= linger
        if self._writing is None and (lingered or len(self._waiting) >= self._batch_size):
            self._start_write()
        return paused

    async def write_all(self) -> list[int]:
        """Write everything gathered, after the write in progress; the mailings paused."""
        paused = await self._finish_write(wait=True)
        if self._waiting:
            self._start_write()
            paused += await self._finish_write(wait=True)
        await self._after_hand_overs_done(wait=True)
        return paused

    def _start_write(self) -> None:
        if self._waiting:
            batch, self._waiting, self.pausing = self._waiting, [], False
            self._writing = batch, asyncio.create_task(self._recorder.record(batch))

    async def _finish_write(self, *, wait: bool) -> list[int]:
        """Take the write in progress once done (or wait for it): raises its error, and then
        its batch waits to be written again, so nothing is lost."""
        if self._writing is None or not (wait or self._writing[1].done()):
            return []
        (batch, writing), self._writing = self._writing, None
        try:
            paused = await writing
        except BaseException:
            self._waiting[:0] = batch
            self.pausing = any(settlement.pauses_mailing for settlement in self._waiting)
            raise
        self._alone = False
        return paused

    async def _after_hand_overs_done(self, *, wait: bool) -> None:
        """Reap the checks after hand-overs that wrote answers ("is the mailing finished?").

        Their answers are written: a check that failed is only logged, and the scheduler's
        next tick finishes the mailing instead.
        """
        if wait and self._after_hand_overs:
            await asyncio.wait(self._after_hand_overs)
        done = [task for task in self._after_hand_overs if task.done()]
        self._after_hand_overs = [task for task in self._after_hand_overs if not task.done()]
        for task in done:
            error = None if task.cancelled() else task.exception()
            if isinstance(error, repository.UNAVAILABLE):
                _log.warning("could not ask whether mailings finished", error=repr(error))
            elif error is not None:
                raise error


def _first_line(error: Exception) -> str:
    """The database's own first line; asyncpg's come prefixed with their class, which says
    nothing to an operator."""
    return str(getattr(error, "orig", error)).splitlines()[0].split(">: ", 1)[-1]


def _unrecordable(settlement: Settlement, said: str) -> Settlement:
    """The settlement of a result the database refused: unknown if the gateway may have it."""
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
