"""Who may use the service: API tokens (machines) and console users with their sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.db import Base, BigId, UTCDateTime


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, so a database leak reveals no token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The audit log tells who did what, so reading it is granted on purpose, never by default.
    reads_audit: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)


class Role(StrEnum):
    """What a console user may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"  # reads every page
    OPERATOR = "operator"  # + writes clients, messages and mailings
    ADMIN = "admin"  # + users and API tokens

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


class AuthSource(StrEnum):
    LOCAL = "local"  # a password hash kept here
    OIDC = "oidc"  # an OpenID Connect provider vouches for the user


class User(Base):
    """A person who signs in to the console."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # a Role
    auth_source: Mapped[str] = mapped_column(String(16))  # an AuthSource
    # argon2id, PHC string; null for users who sign in only through OIDC.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def may(self, needed: Role) -> bool:
        """Whether this user's role allows work that needs ``needed``."""
        return Role(self.role).allows(needed)


class UserSession(Base):
    """A signed-in browser; the cookie holds the token, the table only its SHA-256."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """Failed sign-ins in a row of one user name or one client address, shared by every process.

    ``key`` is the SHA-256 of ``user:<name>`` or ``ip:<address>``: a name typed by mistake (a
    password in the name field) is never stored readable. See :mod:`sms_sender.auth.throttle`.
    """

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    next_allowed_at: Mapped[datetime] = mapped_column(UTCDateTime)
