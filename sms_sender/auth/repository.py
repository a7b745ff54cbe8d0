from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.auth.models import ApiToken, LoginFailure, User, UserSession
from sms_sender.dialects import insert_or_update


async def add(session: AsyncSession, token: ApiToken) -> ApiToken:
    session.add(token)
    await session.flush()
    return token


async def by_name(session: AsyncSession, name: str) -> ApiToken | None:
    return await session.scalar(select(ApiToken).where(ApiToken.name == name))


async def active_by_hash(session: AsyncSession, token_hash: str) -> ApiToken | None:
    return await session.scalar(
        select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
    )


async def all_tokens(session: AsyncSession) -> Sequence[ApiToken]:
    return (await session.scalars(select(ApiToken).order_by(ApiToken.id))).all()


async def revoke(session: AsyncSession, name: str, now: datetime) -> int | None:
    """The revoked token's id, or None if no active token has that name."""
    return await session.scalar(
        update(ApiToken)
        .where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(ApiToken.id)
    )


async def add_user(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user


async def user_by_name(session: AsyncSession, name: str) -> User | None:
    return await session.scalar(select(User).where(User.name == name))


async def user_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def users_page(session: AsyncSession, *, after_id: int, limit: int) -> Sequence[User]:
    statement = select(User).where(User.id > after_id).order_by(User.id).limit(limit + 1)
    return (await session.scalars(statement)).all()


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def add_session(session: AsyncSession, user_session: UserSession) -> None:
    session.add(user_session)
    await session.flush()


async def active_session_user(session: AsyncSession, token_hash: str, now: datetime) -> User | None:
    """The enabled user of an unexpired session, in one query."""
    return await session.scalar(
        select(User)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            UserSession.token_hash == token_hash,
            UserSession.expires_at > now,
            User.disabled_at.is_(None),
        )
    )


async def delete_session(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(UserSession).where(UserSession.token_hash == token_hash))


async def delete_sessions_of(session: AsyncSession, user_id: int, now: datetime) -> None:
    """End every session of the user, and clear away anyone's expired ones while here."""
    await session.execute(
        delete(UserSession).where(
            (UserSession.user_id == user_id) | (UserSession.expires_at <= now)
        )
    )


async def login_allowed_at(
    session: AsyncSession, keys: list[str], counted_since: datetime
) -> datetime | None:
    """The latest moment any of ``keys`` must wait for, among failures not yet forgotten."""
    return await session.scalar(
        select(func.max(LoginFailure.next_allowed_at)).where(
            LoginFailure.key.in_(keys), LoginFailure.last_failed_at > counted_since
        )
    )


async def count_login_failure(
    session: AsyncSession, key: str, now: datetime, forget_after: timedelta
) -> int:
    """Add one failure to ``key`` (starting again if the last is forgotten); the count now."""
    forgotten = LoginFailure.last_failed_at <= now - forget_after
    statement = insert_or_update(
        session,
        LoginFailure,
        {"key": key, "failures": 1, "last_failed_at": now, "next_allowed_at": now},
        conflict_on=("key",),
        set_={
            "failures": case((forgotten, 1), else_=LoginFailure.failures + 1),
            "next_allowed_at": case((forgotten, now), else_=LoginFailure.next_allowed_at),
            "last_failed_at": now,
        },
    ).returning(LoginFailure.failures)
    return int((await session.execute(statement)).scalar_one())


async def delay_login(session: AsyncSession, key: str, allowed_at: datetime) -> None:
    await session.execute(
        update(LoginFailure).where(LoginFailure.key == key).values(next_allowed_at=allowed_at)
    )


async def clear_login_failures(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginFailure).where(LoginFailure.key == key))


async def forget_login_failures(session: AsyncSession, counted_since: datetime) -> None:
    """Drop counts whose last failure is forgotten already (keeps the table small)."""
    await session.execute(delete(LoginFailure).where(LoginFailure.last_failed_at <= counted_since))
