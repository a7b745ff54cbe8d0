"""An in-memory provider for tests of the engine: scripted outcomes, every call recorded.

Usage::

    provider = FakeProvider(clock=clock)                  # accepts everything by default
    provider.script_phone("79000000001", transient(), transient())   # fails twice, then default
    provider.on_phone("79000000002", permanent("blocked number"))     # fails every time
    provider.script(hang())                               # the next call, any phone, never answers
    provider.on_phone("79000000003", accept(delay=0.2))   # answers after 0.2 s of real time
    provider.script(unknown(), no_funds(), transient(retry_after=30))  # the other outcomes

    ... run the engine ...
    await provider.wait_for_calls(10)                     # no sleeps: wakes on the 10th call
                                                          # (TimeoutError after within=5 s)
    await provider.wait_for_results(10)                   # ... or when 10 calls have answered
    provider.release()                                    # hung calls now answer (accepted)

    provider.calls                  # FakeCall per message, in call order: message, started_at,
                                    # finished_at, result (None while in flight or if cancelled)
    provider.report_ids()           # report ids of every call, repeats included
    provider.accepted_report_ids()  # report ids of accepted calls
    provider.duplicates()           # report ids accepted more than once (must stay empty)
    provider.batch_sizes            # len() of each batch handed to send()
    provider.max_in_flight          # the most sends in progress at once

Which step a call takes: the phone's script (each step used once), then the shared script (each
step used once, any phone), then the phone's standing step, then ``default``. Each message of a
batch runs concurrently, so one hanging phone does not hold up the others. ``started_at`` and
``finished_at`` come from ``clock`` (a FakeClock in schedule tests), delays are real seconds.
``on_call`` is called synchronously as each call starts, e.g. to move a FakeClock forward.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sms_sender.clock import Clock, SystemClock
from sms_sender.providers.base import NO_TEXT_LIMITS, Outcome, OutgoingMessage, SendResult


@dataclass(frozen=True, slots=True)
class Step:
    """What the fake does with one message: answer ``outcome`` after ``delay`` seconds.

    A ``hang`` step waits for ``FakeProvider.release()`` (or for cancellation) before answering.
    """

    outcome: Outcome
    error: str | None = None
    delay: float = 0.0
    hang: bool = False
    retry_after: float | None = None
    message_id: str | None = None  # the gateway's id of an accepted message (default fake-N)


def accept(delay: float = 0.0, message_id: str | None = None) -> Step:
    return Step(Outcome.ACCEPTED, delay=delay, message_id=message_id)


def transient(
    error: str = "gateway unavailable", delay: float = 0.0, retry_after: float | None = None
) -> Step:
    return Step(Outcome.TRANSIENT, error=error, delay=delay, retry_after=retry_after)


def unknown(error: str = "read timeout after the request was sent", delay: float = 0.0) -> Step:
    return Step(Outcome.UNKNOWN, error=error, delay=delay)


def no_funds(error: str = "insufficient funds", delay: float = 0.0) -> Step:
    return Step(Outcome.NO_FUNDS, error=error, delay=delay)


def permanent(error: str = "rejected by the gateway", delay: float = 0.0) -> Step:
    return Step(Outcome.PERMANENT, error=error, delay=delay)


def hang() -> Step:
    """Never answers until ``release()``; then the message is accepted."""
    return Step(Outcome.ACCEPTED, hang=True)


@dataclass(slots=True)
class FakeCall:
    message: OutgoingMessage
    started_at: datetime
    finished_at: datetime | None = None
    result: SendResult | None = None
    cancelled: bool = False

    @property
    def report_id(self) -> int:
        return self.message.report_id


class FakeProvider:
    """A scripted provider that records every call; see the module docstring for its API."""

    name = "fake"
    text_limits = NO_TEXT_LIMITS

    def __init__(
        self,
        *,
        default: Step | None = None,
        idempotent: bool = False,
        clock: Clock | None = None,
        on_call: Callable[[FakeCall], None] | None = None,
    ) -> None:
        self.idempotent = idempotent
        self.default = default or accept()
        self.calls: list[FakeCall] = []
        self.batch_sizes: list[int] = []
        self.max_in_flight = 0
        self._clock = clock or SystemClock()
        self._on_call = on_call
        self._shared_script: deque[Step] = deque()
        self._phone_scripts: defaultdict[str, deque[Step]] = defaultdict(deque)
        self._phone_steps: dict[str, Step] = {}
        self._in_flight = 0
        self._released = asyncio.Event()
        self._changed = asyncio.Condition()

    def script(self, *steps: Step) -> None:
        """The next calls, whatever their phone, take these steps in order (once each)."""
        self._shared_script.extend(steps)

    def script_phone(self, phone: str, *steps: Step) -> None:
        """The next calls to ``phone`` take these steps in order (once each)."""
        self._phone_scripts[phone].extend(steps)

    def on_phone(self, phone: str, step: Step) -> None:
        """Every call to ``phone`` takes ``step`` once its script is used up."""
        self._phone_steps[phone] = step

    def release(self) -> None:
        """Let every hanging call (now and later) answer."""
        self._released.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def report_ids(self) -> list[int]:
        return [call.report_id for call in self.calls]

    def accepted_report_ids(self) -> list[int]:
        return [
            call.report_id
            for call in self.calls
            if call.result is not None and call.result.outcome is Outcome.ACCEPTED
        ]

    def duplicates(self) -> list[int]:
        """Report ids accepted more than once: a client who got the message twice."""
        counts = Counter(self.accepted_report_ids())
        return sorted(report_id for report_id, count in counts.items() if count > 1)

    async def wait_for_calls(self, count: int, within: float = 5.0) -> None:
        """Return once ``count`` calls have started; TimeoutError after ``within`` seconds."""
        await self._wait(lambda: len(self.calls) >= count, f"{count} calls", within)

    async def wait_for_results(self, count: int, within: float = 5.0) -> None:
        """Return once ``count`` calls have answered; TimeoutError after ``within`` seconds."""
        await self._wait(lambda: self._answered() >= count, f"{count} answers", within)

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        self.batch_sizes.append(len(batch))
        return await asyncio.gather(*(self._send_one(message) for message in batch))

    async def _send_one(self, message: OutgoingMessage) -> SendResult:
        call = FakeCall(message=message, started_at=self._clock.now())
        self.calls.append(call)
        call_number = len(self.calls)
        step = self._next_step(message.phone)
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self._on_call is not None:
                self._on_call(call)
            await self._notify()
            result = await self._perform(step, call_number)
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        finally:
            self._in_flight -= 1
            call.finished_at = self._clock.now()
        call.result = result
        await self._notify()
        return result

    def _next_step(self, phone: str) -> Step:
        phone_script = self._phone_scripts.get(phone)
        if phone_script:
            return phone_script.popleft()
        if self._shared_script:
            return self._shared_script.popleft()
        return self._phone_steps.get(phone, self.default)

    async def _perform(self, step: Step, call_number: int) -> SendResult:
        if step.hang:
            await self._released.wait()
        if step.delay > 0:
            await asyncio.sleep(step.delay)
        if step.outcome is Outcome.ACCEPTED:
            return SendResult.accepted(step.message_id or f"fake-{call_number}")
        return SendResult(step.outcome, error=step.error, retry_after=step.retry_after)

    def _answered(self) -> int:
        return sum(1 for call in self.calls if call.result is not None)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, reached: Callable[[], bool], what: str, within: float) -> None:
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(reached)
        except TimeoutError:
            raise TimeoutError(
                f"waited {within:g}s for {what}; saw {len(self.calls)} calls, "
                f"{self._answered()} answered"
            ) from None
