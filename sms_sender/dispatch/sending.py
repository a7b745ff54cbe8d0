"""Provider calls: the last checks before one, the call itself, and what its answer means.

The worker runs one per message, concurrently, as tasks in :class:`InFlight`: each puts its
settlement on a queue the worker takes from, so nothing calls back into the worker. Between
the end_at check and the call there is no ``await``, so no call starts at or after a mailing's
end, however late the message got its rate-limit slot. The end and send window it checks are
those read when the report was handed over, so an edit made while the report waited in the
worker is respected.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import Histogram

from sms_sender import metrics
from sms_sender.clock import Clock
from sms_sender.dispatch.handover import Handed
from sms_sender.dispatch.ratelimit import wait_for_slot
from sms_sender.dispatch.repository import fit
from sms_sender.dispatch.retry import RetryPolicy
from sms_sender.dispatch.types import ClaimedReport, MailingTerms, Settlement
from sms_sender.logging import message_fields
from sms_sender.providers.base import OutgoingMessage, Provider, SendResult
from sms_sender.reports import lifecycle
from sms_sender.reports.models import ERROR_SIZE, PROVIDER_MESSAGE_ID_SIZE, ReportStatus

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Sender:
    """Sends one handed-over report and turns the answer into its :class:`Settlement`."""

    provider: Provider
    clock: Clock
    retry: RetryPolicy
    timeout: float
    _latency: Histogram = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Looked up once: finding a labelled child costs more than observing it.
        object.__setattr__(self, "_latency", metrics.SEND_LATENCY.labels(self.provider.name))

    async def send(self, report: ClaimedReport, terms: MailingTerms, slot_at: float) -> Settlement:
        """Wait for the rate-limit slot, ask may it go now, call the provider; never raises."""
        # Passed to each line, not bound as context variables: binding three of them for every
        # message cost a tenth of the worker's busy time (docs/benchmarks.md, finding 9).
        ids = {
            "mailing_id": report.mailing_id,
            "report_id": report.id,
            "client_id": report.client_id,
        }
        called = False
        try:
            await wait_for_slot(slot_at)
            # From this check to the call there is no await: nothing leaves at or after the end.
            now = self.clock.now()
            clearance = lifecycle.may_go_now(
                now=now, end_at=terms.end_at, window=terms.window, timezone=report.timezone
            )
            if clearance.verdict is lifecycle.Verdict.NEVER:
                expired = lifecycle.Transition(ReportStatus.EXPIRED, lifecycle.ENDED_BEFORE_SEND)
                return self._settlement(report, expired)
            if clearance.opens_at is not None:  # the window closed, or narrowed, since the claim
                return self._settlement(report, lifecycle.not_sent(clearance.opens_at))
            message = OutgoingMessage(
                report_id=report.id,
                mailing_id=report.mailing_id,
                client_id=report.client_id,
                phone=report.phone,
                text=report.text,
                valid_for=terms.end_at - now,
            )
            called = True
            result = await self._call(message, ids)
            why_none = f"no answer within {self.timeout:g}s"
        except asyncio.CancelledError:
            # Only the worker's shutdown cancels a send, and it wants the settlement back.
            if not called:  # still waiting for its slot: certainly not sent, so send it later
                return self._settlement(report, lifecycle.not_sent(self.clock.now()))
            result, why_none = None, "send cancelled at shutdown"
        transition = lifecycle.after_answer(
            result,
            why_none=why_none,
            attempts=report.attempts + 1,  # counted when it was handed over
            idempotent=self.provider.idempotent,
            now=self.clock.now(),
            retry_at=self.retry.next_attempt_at,
        )
        self._log_transition(transition, report.attempts + 1, ids)
        return self._settlement(report, transition)

    async def _call(self, message: OutgoingMessage, ids: dict[str, Any]) -> SendResult | None:
        """The provider's answer, or None when it did not give a usable one in time."""
        started = time.perf_counter()
        result: SendResult | None = None
        try:
            async with asyncio.timeout(self.timeout):
                results = await self.provider.send([message])
            if len(results) == 1:
                result = results[0]
            else:
                _log.error("provider answered %d results for 1 message", len(results), **ids)
        except TimeoutError:
            pass
        except Exception:  # the provider broke its contract; the message may or may not be out
            _log.exception(
                "provider raised instead of answering", provider=self.provider.name, **ids
            )
        finally:
            elapsed = time.perf_counter() - started
            self._latency.observe(elapsed)
            self._log_exchange(message, result, elapsed, ids)
        return result

    def _log_exchange(
        self,
        message: OutgoingMessage,
        result: SendResult | None,
        elapsed: float,
        ids: dict[str, Any],
    ) -> None:
        """One line per send: what went to the provider and what came back."""
        _log.info(
            "provider exchange",
            **ids,
            provider=self.provider.name,
            request=message_fields(message.phone, message.text),
            response=(
                {
                    "outcome": result.outcome.value,
                    "provider_message_id": result.provider_message_id,
                    "error": result.error,
                }
                if result is not None
                else {"outcome": "no answer"}
            ),
            duration_ms=round(elapsed * 1000, 2),
        )

    def _log_transition(
        self, transition: lifecycle.Transition, attempts: int, ids: dict[str, Any]
    ) -> None:
        status, error = transition.status, transition.error
        if transition.pauses_mailing:
            _log.warning("provider account cannot pay; the mailing pauses", error=error, **ids)
        elif status is ReportStatus.PENDING:
            metrics.RETRIES.labels(self.provider.name).inc()
            at = transition.next_attempt_at
            _log.info("send failed; will retry", error=error, attempts=attempts, at=at, **ids)
        elif status is ReportStatus.UNKNOWN:
            _log.warning("send outcome unknown; not sent again", error=error, **ids)
        elif status is ReportStatus.FAILED:
            _log.warning("message failed", error=error, attempts=attempts, **ids)

    def _settlement(self, report: ClaimedReport, transition: lifecycle.Transition) -> Settlement:
        """The transition as it is written to the report; strings from outside cut to size."""
        return Settlement(
            report_id=report.id,
            mailing_id=report.mailing_id,
            client_id=report.client_id,
            status=transition.status,
            error=fit(transition.error, ERROR_SIZE),
            provider_message_id=fit(transition.provider_message_id, PROVIDER_MESSAGE_ID_SIZE),
            sent_at=self.clock.now() if transition.sent else None,
            next_attempt_at=transition.next_attempt_at,
            attempted=transition.attempted,
            pauses_mailing=transition.pauses_mailing,
        )


class InFlight:
    """The calls under way, at most ``concurrency``; their answers wait in a queue until taken."""

    def __init__(self, sender: Sender, concurrency: int) -> None:
        self._sender = sender
        self._concurrency = concurrency
        self._calls: dict[int, asyncio.Task[None]] = {}  # by report id
        self._answers: asyncio.Queue[tuple[int, Settlement | None]] = asyncio.Queue()

    def __len__(self) -> int:
        return len(self._calls)

    def free(self) -> int:
        return self._concurrency - len(self._calls)

    def report_ids(self) -> list[int]:
        """The reports whose call is under way or whose answer is not yet taken."""
        return list(self._calls)

    def start(self, handed: Handed) -> None:
        self._calls[handed.report.id] = asyncio.create_task(self._call(handed))

    def take(self) -> list[Settlement]:
        """The answers that came since the last take."""
        answers: list[Settlement] = []
        while not self._answers.empty():
            self._took(*self._answers.get_nowait(), answers)
        return answers

    async def wait(self, free: int, within: float, wake: asyncio.Event) -> list[Settlement]:
        """Take answers as they come until ``free`` slots are free, ``wake`` is set or
        ``within`` seconds pass."""
        answers = self.take()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self.free() < free and not wake.is_set():
                    self._took(*await self._answers.get(), answers)
        return answers + self.take()

    async def finish(self, grace: float) -> list[Settlement]:
        """Shutdown: ``grace`` seconds to answer, then the rest are cancelled (outcome unknown)."""
        calls = list(self._calls.values())
        if calls:
            _log.info("waiting for sends in flight", count=len(calls))
            await asyncio.wait(calls, timeout=grace)
            for call in calls:
                call.cancel()  # Sender.send turns this into a settlement: the outcome is unknown
            await asyncio.wait(calls)
        return self.take()

    def _took(self, report_id: int, settlement: Settlement | None, into: list[Settlement]) -> None:
        del self._calls[report_id]
        if settlement is not None:
            into.append(settlement)

    async def _call(self, handed: Handed) -> None:
        settlement = None
        try:
            settlement = await self._sender.send(handed.report, handed.terms, handed.slot_at)
        except Exception:  # a bug: its lease runs out, then reclaim takes it over
            _log.exception(
                "send task failed", mailing_id=handed.report.mailing_id, report_id=handed.report.id
            )
        finally:
            self._answers.put_nowait((handed.report.id, settlement))
