from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, SmallInteger, String, UniqueConstraint, text
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
    # The provider may or may not have it (a worker died mid-send, or no readable answer came).
    UNKNOWN = "unknown"
    SKIPPED = "skipped"  # never sent: no consent to advertising, or the client opted out


# Not yet handed to a provider: these are what end_at expires and cancel cancels.
UNSENT_REPORT_STATUSES = (ReportStatus.PENDING,)

# Sizes of the columns a provider's answer fills: what comes from outside is cut to them.
PROVIDER_MESSAGE_ID_SIZE = 128
ERROR_SIZE = 1000

# The order of a mailing's pages, as its index spells it (see Report's indexes).
PAGE_ORDER_SQL = "(id + 0)"
_PAGE_ORDER = text(PAGE_ORDER_SQL)

_PENDING = text("status = 'pending'")
_NOT_PENDING = text("status <> 'pending'")
_SENDING = text("status = 'sending'")
_SENT = text("status = 'sent'")
_HANDED_OVER = text("sent_at IS NOT NULL")
_DETACHED = text("client_id IS NULL")


def _bytewise(length: int) -> String:
    """Text that PostgreSQL compares in bytes (``COLLATE "C"``), for digits and ASCII words.

    The cluster's collation would call strcoll for each comparison of an index insertion (a
    few percent of a fan-out); for these values every collation orders as bytes do.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class Report(Base):
    """One message to one client in one mailing; the engine's unit of work."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys: checking them cost two trigger calls per report made, half of a fan-out
    # on PostgreSQL. What they did is done in the open instead: a mailing's delete deletes its
    # reports and a client's delete detaches them (reports.repository, which explains why
    # neither can race with the making of a mailing's reports).
    mailing_id: Mapped[int] = mapped_column(BigId)
    client_id: Mapped[int | None] = mapped_column(BigId)
    # Snapshots taken when the mailing starts, so history never changes under the report.
    phone: Mapped[str] = mapped_column(_bytewise(11))
    text: Mapped[str] = mapped_column(String(1600))
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(_bytewise(16))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(PROVIDER_MESSAGE_ID_SIZE))
    error: Mapped[str | None] = mapped_column(String(ERROR_SIZE))

    # Each index costs every report made a little; each is here for the queries named.
    __table_args__ = (
        # At most one report per (mailing, client); client_id first, so that it also finds a
        # client's reports when the client is deleted.
        UniqueConstraint("client_id", "mailing_id"),
        # Everything about one mailing: counts by status, cancel, expiry, delete, finishing,
        # and its pages (reports.repository.page), which read one status in the order of the
        # last key. That key is id as an expression (PAGE_ORDER_SQL) so that no other index offers
        # its order: the planners took the primary key or (status, id) for "id order", filtered
        # by mailing, and at a mailing's end read every later mailing's reports.
        Index("ix_reports_mailing_pages", "mailing_id", "status", _PAGE_ORDER),
        # GET /reports?phone=: only the reports of deleted clients. The others are found through
        # their client (the one with that phone now or before, ClientFormerPhone) and the
        # unique index above, so a fan-out writes no phone entry: it was one index in five,
        # and the only one a real directory fills in random order (reports._pages).
        Index("ix_reports_phone", "phone", postgresql_where=_DETACHED, sqlite_where=_DETACHED),
        # GET /reports?status= (keyset pages in id order). On PostgreSQL without pending
        # reports, a service mailing's whole fan-out: they are only in the mailings sending,
        # which ix_reports_mailing_pages pages (reports.repository.page).
        Index(None, "status", "id", postgresql_where=_NOT_PENDING),
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
        # The console's activity (sent today, this week, per minute this hour): a range of
        # sent_at. Partial, so the fan-out's pending reports (sent_at null) add nothing to it.
        Index(
            "ix_reports_sent_at",
            "sent_at",
            postgresql_where=_HANDED_OVER,
            sqlite_where=_HANDED_OVER,
        ),
        Index(
            "ix_reports_awaiting_delivery",
            "provider",
            "sent_at",
            postgresql_where=_SENT,
            sqlite_where=_SENT,
        ),
    )


class MailingReportCount(Base):
    """A signed change in how many of a mailing's reports are in one status (and reason).

    Database triggers add these in the transaction that changes a report (the migrations
    ``20261201_load_0001`` and ``20261202_skipcounts_0001`` explain how); a mailing's count in a
    status is the sum of its rows, exact at any size without reading a single report.
    """

    __tablename__ = "mailing_report_counts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailing_id: Mapped[int] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(_bytewise(16))
    # A skipped report's error (why it was skipped); '' for every other status, never NULL.
    reason: Mapped[str] = mapped_column(String(ERROR_SIZE), server_default="")
    reports: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "mailing_id", "status"),)


class ClientFormerPhone(Base):
    """A phone a client had before its current one, for finding the reports made under it.

    A report's phone is its client's at the fan-out, so the reports with a phone are those of
    the client that has it now, of the clients that had it before (these rows), and of deleted
    clients (``ix_reports_phone``). A database trigger adds a row whenever a client's phone
    changes, in the same statement (migration ``20261202_pgfanout2_0001``).
    """

    __tablename__ = "client_former_phones"

    phone: Mapped[str] = mapped_column(String(11), primary_key=True)
    client_id: Mapped[int] = mapped_column(BigId, primary_key=True)
