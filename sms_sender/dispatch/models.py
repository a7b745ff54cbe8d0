"""Tables owned by the delivery engine."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Double, String
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.db import Base, UTCDateTime


class RateLimit(Base):
    """The shared state of one rate limit: the earliest moment its next message may go out.

    ``next_slot_at`` is in seconds since the Unix epoch by the database's clock (a float keeps
    the microseconds that a 20,000 msg/s schedule needs); see :mod:`sms_sender.dispatch.ratelimit`.
    """

    __tablename__ = "rate_limits"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_slot_at: Mapped[float] = mapped_column(Double)


class WorkerHeartbeat(Base):
    """One running worker, and proof that it is alive: ``beats`` grows every second or so.

    Other workers watch it change by their own clocks (machines' clocks may disagree); one that
    stopped changing belongs to a dead worker, whose leases are taken over at once instead of
    running out (see :mod:`sms_sender.dispatch.heartbeat`).
    """

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    beats: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
