"""Console users: created from the CLI or by an admin, passwords hashed with argon2id."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import reasons
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.service import record
from sms_sender.auth import repository
from sms_sender.auth.models import AuthSource, Role, User
from sms_sender.auth.oidc_access import LoginRefused
from sms_sender.errors import Conflict, InvalidInput, NotFound

MIN_PASSWORD_LENGTH = 10
MAX_NAME_LENGTH = 100

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified when the name is unknown, so a wrong name costs as long as a wrong password.

    Made at the first such login, not at import: argon2 fills its 64 MiB of memory to hash,
    which every process that imports this module (a worker, any CLI command) would otherwise
    keep as the peak of its resident memory.
    """
    return _hasher.hash("not a password anyone has")


async def hash_password(password: str) -> str:
    # argon2 takes tens of milliseconds of CPU on purpose: off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(password_hash: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify) and password_hash is not None


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidInput.field(["name"], reasons.USER_NAME, max_length=MAX_NAME_LENGTH)
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.field(
            ["password"], reasons.USER_PASSWORD, min_length=MIN_PASSWORD_LENGTH
        )
    return password


async def create_local(
    session: AsyncSession, name: str, role: Role, password: str, now: datetime
) -> User:
    """A user who signs in with a password."""
    name, password = check_name(name), check_password(password)
    if await repository.user_by_name(session, name) is not None:
        raise Conflict.because(reasons.USER_EXISTS, name=name)
    user = User(
        name=name,
        role=role,
        auth_source=AuthSource.LOCAL,
        password_hash=await hash_password(password),
        created_at=now,
    )
    await repository.add_user(session, user)
    await record(session, AuditAction.CREATED, AuditTarget.USER, user.id, f"{name} ({role})")
    return user


async def authenticate(session: AsyncSession, name: str, password: str) -> User | None:
    """The enabled local user with this name and password, or None (for any reason)."""
    user = await repository.user_by_name(session, name.strip())
    stored = user.password_hash if user is not None else None
    if not await password_matches(stored, password):
        return None
    if user is None or not user.active:
        return None
    return user


async def by_name(session: AsyncSession, name: str) -> User:
    user = await repository.user_by_name(session, name)
    if user is None:
        raise NotFound(f"no user named {name!r}; see: sms-sender user list")
    return user


async def get(session: AsyncSession, user_id: int) -> User:
    user = await repository.user_by_id(session, user_id)
    if user is None:
        raise NotFound.because(reasons.USER_NOT_FOUND, user_id=user_id)
    return user


async def page(session: AsyncSession, *, after_id: int, limit: int) -> Sequence[User]:
    return await repository.users_page(session, after_id=after_id, limit=limit)


async def disable(session: AsyncSession, user: User, now: datetime) -> None:
    """The user can no longer sign in, and every session of theirs ends now."""
    if user.disabled_at is None:
        user.disabled_at = now
    await repository.delete_sessions_of(session, user.id, now)
    await session.flush()
    await record(session, AuditAction.DISABLED, AuditTarget.USER, user.id, user.name)


async def enable(session: AsyncSession, user: User) -> None:
    user.disabled_at = None
    await session.flush()
    await record(session, AuditAction.CHANGED, AuditTarget.USER, user.id, f"{user.name} enabled")


async def change_role(session: AsyncSession, user: User, role: Role) -> None:
    user.role = role
    await session.flush()
    await record(
        session, AuditAction.CHANGED, AuditTarget.USER, user.id, f"{user.name} role {role}"
    )


async def sign_in_from_oidc(session: AsyncSession, email: str, role: Role, now: datetime) -> User:
    """The console user an OpenID provider vouched for: made on first sign-in, named by e-mail.

    The provider's groups decide the role at every sign-in, so a change there applies at the
    next one. A local user of the same name is never taken over, and a disabled user stays out.
    """
    user = await repository.user_by_name(session, email)
    if user is None:
        user = User(name=email, email=email, role=role, auth_source=AuthSource.OIDC, created_at=now)
        await repository.add_user(session, user)
        await record(session, AuditAction.CREATED, AuditTarget.USER, user.id, f"{email} ({role})")
        return user
    if user.auth_source != AuthSource.OIDC:
        raise LoginRefused(
            "A console user named %(name)s signs in with a password here; use that, or ask an "
            "administrator to remove it so that you can sign in through your provider.",
            name=email,
        )
    if not user.active:
        raise LoginRefused(
            "Your console account %(name)s was disabled by an administrator.", name=email
        )
    if user.role != role:
        user.role = role
        await session.flush()
        await record(
            session, AuditAction.CHANGED, AuditTarget.USER, user.id, f"{email} role {role}"
        )
    return user
