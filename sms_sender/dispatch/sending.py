"""One provider call: the last checks before it, the call itself, and what its answer means.

The worker runs one of these per message, concurrently. Between the end_at check and the call
there is no ``await``, so no call starts at or after a mailing's end, however late the message
got its rate-limit slot. The end and send window it checks are those read when the report was
handed over, so an edit made while the report waited in the worker is respected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from prometheus_client import Histogram

from sms_sender import metrics
from sms_sender.clock import Clock
from sms_sender.dispatch.ratelimit import wait_for_slot
from sms_sender.dispatch.repository import (
    ENDED_BEFORE_SEND,
    ClaimedReport,
    MailingTerms,
    Settlement,
    fit,
    outcome_unknown,
)
from sms_sender.dispatch.retry import RetryPolicy
from sms_sender.logging import message_fields
from sms_sender.providers.base import Outcome, OutgoingMessage, Provider, SendResult
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
        """Wait for the rate-limit slot, check the end, call the provider; never raises."""
        structlog.contextvars.bind_contextvars(
            mailing_id=report.mailing_id, report_id=report.id, client_id=report.client_id
        )
        attempts = report.attempts + 1  # counted when it was handed over
        called = False
        try:
            await wait_for_slot(slot_at)
            now = self.clock.now()
            if now >= terms.end_at:
                return _settled(report, ReportStatus.EXPIRED, error=ENDED_BEFORE_SEND)
            opening = terms.window.next_opening(now, report.timezone) if terms.window else None
            if opening is not None:  # the window closed, or was narrowed, since the claim
                return _not_attempted(report, next_attempt_at=opening)
            message = OutgoingMessage(
                report_id=report.id,
                mailing_id=report.mailing_id,
                client_id=report.client_id,
                phone=report.phone,
                text=report.text,
                valid_for=terms.end_at - now,
            )
            called = True
            result = await self._call(message)
        except asyncio.CancelledError:
            # Only the worker's shutdown cancels a send, and it wants the settlement back.
            if not called:  # still waiting for its slot: certainly not sent, so send it later
                return _not_attempted(report, next_attempt_at=self.clock.now())
            return self._outcome_unknown(report, attempts, "send cancelled at shutdown")
        if result is None:
            return self._outcome_unknown(report, attempts, f"no answer within {self.timeout:g}s")
        return self._settle(report, attempts, result)

    async def _call(self, message: OutgoingMessage) -> SendResult | None:
        """The provider's answer, or None when it did not give a usable one in time."""
        started = time.perf_counter()
        result: SendResult | None = None
        try:
            async with asyncio.timeout(self.timeout):
                results = await self.provider.send([message])
            if len(results) == 1:
                result = results[0]
            else:
                _log.error("provider answered %d results for 1 message", len(results))
        except TimeoutError:
            pass
        except Exception:  # the provider broke its contract; the message may or may not be out
            _log.exception("provider raised instead of answering", provider=self.provider.name)
        finally:
            elapsed = time.perf_counter() - started
            self._latency.observe(elapsed)
            self._log_exchange(message, result, elapsed)
        return result

    def _log_exchange(
        self, message: OutgoingMessage, result: SendResult | None, elapsed: float
    ) -> None:
        """One line per send: what went to the provider and what came back (ids are bound)."""
        _log.info(
            "provider exchange",
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

    def _settle(self, report: ClaimedReport, attempts: int, result: SendResult) -> Settlement:
        if result.outcome is Outcome.ACCEPTED:
            return _settled(
                report,
                ReportStatus.SENT,
                provider_message_id=result.provider_message_id,
                sent_at=self.clock.now(),
            )
        error = result.error or result.outcome.value
        if result.outcome is Outcome.EXPIRED:
            return _settled(report, ReportStatus.EXPIRED, error=error)
        if result.outcome is Outcome.PERMANENT:
            _log.warning("message rejected", error=error)
            return _settled(report, ReportStatus.FAILED, error=error)
        if result.outcome is Outcome.UNKNOWN:
            return self._outcome_unknown(report, attempts, error)
        if result.outcome is Outcome.NO_FUNDS:
            # Certainly not sent, and sending more is pointless until the account is topped up.
            _log.warning("provider account cannot pay; the mailing pauses", error=error)
            not_sent = _not_attempted(report, next_attempt_at=self.clock.now(), error=error)
            return dataclasses.replace(not_sent, pauses_mailing=True)
        return self._retry_or_fail(report, attempts, error, retry_after=result.retry_after)

    def _retry_or_fail(
        self, report: ClaimedReport, attempts: int, error: str, *, retry_after: float | None = None
    ) -> Settlement:
        now = self.clock.now()
        next_attempt_at = self.retry.next_attempt_at(attempts, error, now)
        if next_attempt_at is None:
            _log.warning("message failed; attempts exhausted", error=error, attempts=attempts)
            failed = f"gave up after {attempts} attempts: {error}"
            return _settled(report, ReportStatus.FAILED, error=failed)
        if retry_after is not None:  # the gateway said when: never earlier than that
            next_attempt_at = max(next_attempt_at, now + timedelta(seconds=retry_after))
        metrics.RETRIES.labels(self.provider.name).inc()
        _log.info("send failed; will retry", error=error, attempts=attempts, at=next_attempt_at)
        return _settled(report, ReportStatus.PENDING, error=error, next_attempt_at=next_attempt_at)

    def _outcome_unknown(self, report: ClaimedReport, attempts: int, why: str) -> Settlement:
        """The call may have reached the gateway: re-send only through an idempotent provider."""
        if self.provider.idempotent:
            return self._retry_or_fail(report, attempts, f"outcome unknown: {why}")
        _log.warning("send outcome unknown; not sent again", error=why)
        return _settled(report, ReportStatus.UNKNOWN, error=outcome_unknown(why))


def _not_attempted(
    report: ClaimedReport, *, next_attempt_at: datetime, error: str | None = None
) -> Settlement:
    """Back to ``pending``, not sent: the attempt counted at hand-over is given back."""
    return dataclasses.replace(
        _settled(report, ReportStatus.PENDING, next_attempt_at=next_attempt_at, error=error),
        attempted=False,
    )


def _settled(
    report: ClaimedReport,
    status: ReportStatus,
    *,
    error: str | None = None,
    provider_message_id: str | None = None,
    sent_at: datetime | None = None,
    next_attempt_at: datetime | None = None,
) -> Settlement:
    return Settlement(
        report_id=report.id,
        mailing_id=report.mailing_id,
        client_id=report.client_id,
        status=status,
        error=fit(error, ERROR_SIZE),
        provider_message_id=fit(provider_message_id, PROVIDER_MESSAGE_ID_SIZE),
        sent_at=sent_at,
        next_attempt_at=next_attempt_at,
    )
