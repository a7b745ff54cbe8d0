"""A mailing's status changes: start (by the scheduler or at creation), pause, resume, cancel,
and resending its ``unknown`` reports. Re-exported by ``mailings.service``, the domain's face.

Each takes the mailing's row lock (:func:`get_for_change`) or is a compare-and-set update
(:func:`start_mailing`), so a user's action and the engine's scheduler cannot both win. Nothing
here commits; wake-ups for the engine are queued with :func:`notify` and fire after the
caller's commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import reasons
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.service import record
from sms_sender.consent.rules import MailingPurpose
from sms_sender.db import CHANNEL_MAILINGS, CHANNEL_REPORTS, notify
from sms_sender.errors import Conflict, NotFound, Reason
from sms_sender.mailings import fan_out, repository
from sms_sender.mailings.models import Mailing, MailingStatus
from sms_sender.reports import lifecycle
from sms_sender.reports import repository as reports_repository

UNFINISHED = (MailingStatus.SCHEDULED, MailingStatus.RUNNING, MailingStatus.PAUSED)
PAUSABLE = (MailingStatus.RUNNING, MailingStatus.SCHEDULED)


async def pause(session: AsyncSession, mailing_id: int, now: datetime) -> Mailing:
    """Stop handing its reports to providers (a scheduled one will not start) until resumed."""
    mailing = await get_for_change(session, mailing_id)
    require_status(mailing, PAUSABLE, reasons.MAILING_NOT_PAUSABLE)
    mailing.status = MailingStatus.PAUSED
    mailing.updated_at = now
    await session.flush()
    await record(session, AuditAction.PAUSED, AuditTarget.MAILING, mailing.id)
    await notify(session, CHANNEL_MAILINGS)
    return mailing


async def resume(session: AsyncSession, mailing_id: int, now: datetime) -> Mailing:
    """Running again if its window contains now (starting it if it never did); else scheduled."""
    mailing = await get_for_change(session, mailing_id)
    require_status(mailing, (MailingStatus.PAUSED,), reasons.MAILING_NOT_RESUMABLE)
    if now >= mailing.end_at:
        raise Conflict.because(
            reasons.MAILING_RESUME_ENDED, mailing_id=mailing_id, end_at=mailing.end_at.isoformat()
        )
    mailing.updated_at = now
    mailing.paused_reason = None
    if now < mailing.start_at:
        mailing.status = MailingStatus.SCHEDULED
    else:
        mailing.status = MailingStatus.RUNNING
        if mailing.started_at is None:  # paused before it ever started
            mailing.started_at = now
            await session.flush()
            await _materialise(session, mailing, now)
    await session.flush()
    await record(session, AuditAction.RESUMED, AuditTarget.MAILING, mailing.id)
    await notify(session, CHANNEL_MAILINGS)
    await notify(session, CHANNEL_REPORTS)
    return mailing


async def cancel(session: AsyncSession, mailing_id: int, now: datetime) -> Mailing:
    """Cancel the mailing and, in the same transaction, every report not yet sent."""
    mailing = await get_for_change(session, mailing_id)
    require_status(mailing, UNFINISHED, reasons.MAILING_NOT_CANCELLABLE)
    mailing.status = MailingStatus.CANCELLED
    mailing.finished_at = now
    mailing.updated_at = now
    await session.flush()
    await reports_repository.close_unsent(
        session, lifecycle.CANCELLED_WITH_MAILING, mailing_ids=[mailing.id], now=now
    )
    await record(session, AuditAction.CANCELLED, AuditTarget.MAILING, mailing.id)
    await notify(session, CHANNEL_MAILINGS)
    return mailing


async def resend_unknown(
    session: AsyncSession, mailing_id: int, asked_by: str, now: datetime
) -> int:
    """Queue the mailing's ``unknown`` reports again, at an operator's request; how many.

    Only while the mailing can still send: not cancelled, before end_at (a report queued after
    that would only expire). A mailing that finished early because every report was final
    runs again; a paused one's reports wait for its resume.
    """
    mailing = await get_for_change(session, mailing_id)
    if mailing.status == MailingStatus.CANCELLED:
        raise Conflict.because(reasons.MAILING_RESEND_CANCELLED, mailing_id=mailing_id)
    if now >= mailing.end_at:
        raise Conflict.because(
            reasons.MAILING_RESEND_ENDED, mailing_id=mailing_id, end_at=mailing.end_at.isoformat()
        )
    reason = lifecycle.requeued_by(asked_by)
    requeued = await reports_repository.requeue_unknown(session, mailing.id, reason, now)
    if requeued and mailing.status == MailingStatus.FINISHED:
        mailing.status = MailingStatus.RUNNING
        mailing.finished_at = None
        mailing.updated_at = now
        await session.flush()
    if requeued:
        await notify(session, CHANNEL_MAILINGS)
        await notify(session, CHANNEL_REPORTS)
    detail = f"{requeued} unknown reports queued again"
    await record(session, AuditAction.RESENT, AuditTarget.MAILING, mailing.id, detail)
    return requeued


async def start_mailing(session: AsyncSession, mailing: Mailing, now: datetime) -> int | None:
    """Start a scheduled mailing: mark it running and make its reports, in the caller's transaction.

    For the scheduler at start_at (and for creation when start_at has passed). Safe when several
    processes race: only the one whose compare-and-set moves it out of ``scheduled`` makes the
    reports. Returns how many reports were made, or None when the mailing was no longer
    scheduled (already started elsewhere, paused, cancelled or deleted).
    """
    started = await repository.change_status(
        session,
        mailing.id,
        expected=(MailingStatus.SCHEDULED,),
        status=MailingStatus.RUNNING,
        now=now,
        started_at=now,
    )
    if started is None:
        return None
    created = await _materialise(session, started, now)
    await notify(session, CHANNEL_MAILINGS)
    return created


async def _materialise(session: AsyncSession, mailing: Mailing, now: datetime) -> int:
    created = await fan_out.materialise(
        session,
        mailing_id=mailing.id,
        text=await repository.message_text_of(session, mailing),
        operator_codes=mailing.filter_operator_codes,
        tags=mailing.filter_tags,
        purpose=MailingPurpose(mailing.purpose),
        now=now,
    )
    await notify(session, CHANNEL_REPORTS)
    return created


async def start_if_due(session: AsyncSession, mailing: Mailing, now: datetime) -> None:
    if mailing.status == MailingStatus.SCHEDULED and mailing.start_at <= now < mailing.end_at:
        await start_mailing(session, mailing, now)


async def get_for_change(session: AsyncSession, mailing_id: int) -> Mailing:
    mailing = await repository.get_for_change(session, mailing_id)
    if mailing is None:
        raise NotFound.because(reasons.MAILING_NOT_FOUND, mailing_id=mailing_id)
    return mailing


def require_status(mailing: Mailing, allowed: Sequence[MailingStatus], refusal: Reason) -> None:
    if mailing.status not in allowed:
        raise Conflict.because(refusal, mailing_id=mailing.id, status=mailing.status)
