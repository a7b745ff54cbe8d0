from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, SmallInteger, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.db import Base, BigId, UTCDateTime


class ReportStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


TERMINAL_REPORT_STATUSES = frozenset(
    {
        ReportStatus.DELIVERED,
        ReportStatus.UNDELIVERED,
        ReportStatus.FAILED,
        ReportStatus.EXPIRED,
        ReportStatus.CANCELLED,
        ReportStatus.INTERRUPTED,
    }
)
# Not yet handed to a provider: these are what end_at expires and cancel cancels.
UNSENT_REPORT_STATUSES = (ReportStatus.PENDING,)

_PENDING = text("status = 'pending'")
_SENDING = text("status = 'sending'")
_SENT = text("status = 'sent'")


class Report(Base):
    """One message to one client in one mailing; the engine's unit of work."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailing_id: Mapped[int] = mapped_column(BigId, ForeignKey("mailings.id", ondelete="CASCADE"))
    client_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("clients.id", ondelete="SET NULL")
    )
    # Snapshots taken when the mailing starts, so history never changes under the report.
    phone: Mapped[str] = mapped_column(String(11))
    text: Mapped[str] = mapped_column(String(1600))
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (
        UniqueConstraint("mailing_id", "client_id"),
        Index(None, "mailing_id", "status"),
        Index(None, "client_id"),
        Index(None, "phone"),
        Index(None, "status", "id"),
        # The engine's hot paths, each a partial index over the few rows in that state.
        Index(
            "ix_reports_due",
            "next_attempt_at",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        Index(
            "ix_reports_lease",
            "lease_expires_at",
            postgresql_where=_SENDING,
            sqlite_where=_SENDING,
        ),
        Index(
            "ix_reports_awaiting_delivery",
            "provider",
            "sent_at",
            postgresql_where=_SENT,
            sqlite_where=_SENT,
        ),
    )
