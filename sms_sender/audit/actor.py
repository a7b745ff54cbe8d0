"""Who is acting in the current request or command, bound once where they are identified.

The API's token check, the console's session check and the CLI each bind an ``Actor``; the
services that change things call ``audit.service.record`` without being told who is asking, so
the API and the console, which share those services, are audited by the same lines.
Work no one bound (the delivery engine, a test calling a service directly) is the ``SYSTEM``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from sms_sender.audit.models import AuditSource
from sms_sender.clock import Clock, SystemClock


@dataclass(frozen=True)
class Actor:
    """A user or API token name, where it acts from, and the clock that dates its actions."""

    name: str
    source: AuditSource
    clock: Clock = field(default_factory=SystemClock, compare=False)


SYSTEM = Actor(name="system", source=AuditSource.SYSTEM)

_current: ContextVar[Actor] = ContextVar("sms_sender_actor", default=SYSTEM)


def current_actor() -> Actor:
    return _current.get()


def bind_actor(actor: Actor) -> None:
    """Make ``actor`` the one acting for the rest of this request (its task's context)."""
    _current.set(actor)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """``actor`` acts inside the block; whoever acted before does again after it."""
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)
