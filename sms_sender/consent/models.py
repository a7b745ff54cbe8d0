"""Tables of consent: the audit history of each client's changes, and the suppression list."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.db import Base, BigId, UTCDateTime

SOURCE_MAX_LENGTH = 200


class ConsentChange(StrEnum):
    CONSENT_GIVEN = "consent_given"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OPTED_OUT = "opted_out"
    OPT_OUT_CLEARED = "opt_out_cleared"


class ConsentEvent(Base):
    """One change of a client's consent or opt-out: what, when, where from and who asked."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key: the proof outlives the client. Null once the client is deleted, so a
    # later client given the same id (SQLite reuses the highest) never inherits it.
    client_id: Mapped[int | None] = mapped_column(BigId)
    change: Mapped[str] = mapped_column(String(32))
    # When it took effect (a consent may have been given before it was recorded here).
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str | None] = mapped_column(String(SOURCE_MAX_LENGTH))
    # "token:NAME", "inbound webhook", "suppression list", "console:USER".
    actor: Mapped[str] = mapped_column(String(SOURCE_MAX_LENGTH))

    # GET /clients/{id}/consent-history: a client's events in id order, keyset pages.
    __table_args__ = (Index(None, "client_id", "id"),)


class Suppression(Base):
    """A phone that asked to stop, as an HMAC of the phone: no client needs to exist for it."""

    __tablename__ = "suppressions"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str | None] = mapped_column(String(SOURCE_MAX_LENGTH))


class SuppressionKey(Base):
    """The key of the suppression hashes when SMS_SENDER_SUPPRESSION_KEY is not set.

    One row, made by the migration with a random value: every process of the database uses the
    same key with no set-up. It sits beside the hashes, so a copy of the database is enough to
    test every possible phone against them; setting the key outside the database avoids that.
    """

    __tablename__ = "suppression_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
