from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.db import Base, BigId, UTCDateTime


class AuditAction(StrEnum):
    CREATED = "created"
    CHANGED = "changed"
    DELETED = "deleted"
    PAUSED = "paused"
    RESUMED = "resumed"
    CANCELLED = "cancelled"
    RESENT = "resent"
    IMPORTED = "imported"
    REVOKED = "revoked"
    DISABLED = "disabled"
    SIGNED_IN = "signed_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGNED_OUT = "signed_out"


class AuditTarget(StrEnum):
    """The kind of thing an entry is about."""

    CLIENT = "client"
    MESSAGE = "message"
    MAILING = "mailing"
    TOKEN = "token"
    USER = "user"


class AuditSource(StrEnum):
    """Where the action came from."""

    API = "api"
    ADMIN = "admin"
    CLI = "cli"
    SYSTEM = "system"


class AuditEntry(Base):
    """One action by one actor on one thing; rows are only ever added."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index(None, "target", "target_id", "id"), Index(None, "actor", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(32))
    # Null when the action is about many things at once (an import).
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str | None] = mapped_column(String(1000))
