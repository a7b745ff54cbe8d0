from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.consent.rules import MailingPurpose
from sms_sender.db import Base, BigId, UTCDateTime


class MailingStatus(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


ACTIVE_MAILING_STATUSES = (MailingStatus.RUNNING, MailingStatus.PAUSED)


class Mailing(Base):
    __tablename__ = "mailings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("messages.id", ondelete="RESTRICT"), index=True
    )
    filter_operator_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    filter_tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The send window as minutes after local midnight; end < start means it wraps midnight.
    send_window_start: Mapped[int | None] = mapped_column(SmallInteger)
    send_window_end: Mapped[int | None] = mapped_column(SmallInteger)
    purpose: Mapped[str] = mapped_column(String(16), default=MailingPurpose.SERVICE)
    status: Mapped[str] = mapped_column(String(16))
    # Why the engine paused it (the provider's account cannot pay); None otherwise.
    paused_reason: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The scheduler asks "which scheduled mailing starts next" and "which running one ends next".
    __table_args__ = (
        Index(None, "status", "start_at"),
        Index(None, "status", "end_at"),
    )
