"""The notifications table: one row per e-mail or webhook call the service owes someone.

A row is made to claim something that must be said once: the daily report of a day, or an
alert of one kind about one mailing in one hour. Its unique (kind, channel, claim) key is what
makes "once" hold across workers and restarts: whoever inserts it first owns the duty, everyone
else's INSERT … ON CONFLICT DO NOTHING does nothing. The row then carries the delivery's state
(a lease while it is being sent, attempts and the next attempt's time after a failure).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.db import Base, BigId, UTCDateTime


class NotificationKind(StrEnum):
    DAILY_REPORT = "daily_report"
    MAILING_FINISHED = "mailing_finished"
    MAILING_PAUSED = "mailing_paused"  # paused by the engine, e.g. the provider wants funds
    FAILURE_SHARE = "failure_share"  # more of a running mailing's reports fail than allowed
    UNKNOWN_REPORTS = "unknown_reports"  # reports whose outcome nobody knows need a person


ALERT_KINDS = tuple(kind for kind in NotificationKind if kind != NotificationKind.DAILY_REPORT)


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # to be sent at next_attempt_at
    SENDING = "sending"  # leased by lease_owner until lease_expires_at
    SENT = "sent"
    FAILED = "failed"  # every attempt failed; the reason is in error


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    # What the row claims: the day ("2030-01-14") or the mailing and hour ("42@2030-01-15T12").
    claim: Mapped[str] = mapped_column(String(64))
    day: Mapped[date | None] = mapped_column(Date)
    mailing_id: Mapped[int | None] = mapped_column(BigId)
    # An alert's figures as they were when it was raised.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (
        UniqueConstraint("kind", "channel", "claim"),
        # What is due to be sent (pending by next_attempt_at, sending by lease).
        Index(None, "status", "next_attempt_at"),
        # The last alert of a kind about a mailing (at most one an hour).
        Index(None, "mailing_id", "kind", "created_at"),
    )
