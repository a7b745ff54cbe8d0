"""Tables owned by the delivery engine."""

from __future__ import annotations

from sqlalchemy import Double, String
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.db import Base


class RateLimit(Base):
    """The shared state of one rate limit: the earliest moment its next message may go out.

    ``next_slot_at`` is in seconds since the Unix epoch by the database's clock (a float keeps
    the microseconds that a 20,000 msg/s schedule needs); see :mod:`sms_sender.dispatch.ratelimit`.
    """

    __tablename__ = "rate_limits"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_slot_at: Mapped[float] = mapped_column(Double)
