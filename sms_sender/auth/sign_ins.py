"""Console sign-ins, failed sign-ins and sign-outs, in the audit log and the log lines.

Each is recorded in the request's transaction as the person concerned: the user's name when
the name is one of ours, ``UNKNOWN_NAME`` otherwise, since a name that matches nobody is often
a password typed in the wrong field. The password itself never reaches this module.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender.audit.actor import Actor, acting_as
from sms_sender.audit.models import AuditAction, AuditSource, AuditTarget
from sms_sender.audit.service import record
from sms_sender.auth import repository
from sms_sender.auth.models import User
from sms_sender.clock import Clock

UNKNOWN_NAME = "(unknown name)"


async def signed_in(
    session: AsyncSession, clock: Clock, user: User, method: str, address: str
) -> None:
    """``method``: how they proved who they are ("password", or "oidc" and the provider)."""
    with acting_as(Actor(user.name, AuditSource.ADMIN, clock)):
        await record(
            session, AuditAction.SIGNED_IN, AuditTarget.USER, user.id, f"{method} from {address}"
        )


async def sign_in_failed(
    session: AsyncSession,
    clock: Clock,
    name: str | None,
    why: str,
    address: str,
    *,
    vouched: bool = False,
) -> None:
    """A refused sign-in under ``name`` and the reason.

    ``vouched``: an OpenID provider said who this is (the name is an e-mail it proved), so the
    name is kept even when it is nobody's here. ``name`` None: nobody said who it was.
    """
    user = await repository.user_by_name(session, name.strip()) if name else None
    actor = UNKNOWN_NAME
    if user is not None:
        actor = user.name
    elif vouched and name:
        actor = name
    with acting_as(Actor(actor, AuditSource.ADMIN, clock)):
        await record(
            session,
            AuditAction.SIGN_IN_FAILED,
            AuditTarget.USER,
            user.id if user is not None else None,
            f"{why} from {address}",
        )


async def signed_out(session: AsyncSession, clock: Clock, user: User, address: str) -> None:
    with acting_as(Actor(user.name, AuditSource.ADMIN, clock)):
        await record(session, AuditAction.SIGNED_OUT, AuditTarget.USER, user.id, f"from {address}")
