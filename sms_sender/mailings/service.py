"""Mailing rules: what may be created, read, edited or deleted, and when.

The status changes (start, pause, resume, cancel, resend) are in ``_control.py`` and this
module is their face: callers ask ``mailings.service`` for both. Changes take the mailing's
row lock (:func:`repository.get_for_change`) or are compare-and-set updates, so a user's action
and the engine's scheduler cannot both win. Nothing here commits; wake-ups for the engine are
queued with :func:`notify` and fire after the caller's commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from sms_sender import reasons
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.audit.service import record
from sms_sender.consent.rules import MailingPurpose
from sms_sender.db import CHANNEL_MAILINGS, CHANNEL_REPORTS, notify
from sms_sender.errors import Conflict, InvalidInput, NotFound
from sms_sender.mailings import fan_out, repository
from sms_sender.mailings._control import (
    UNFINISHED,
    cancel,
    get_for_change,
    pause,
    resend_unknown,
    resume,
    start_if_due,
    start_mailing,
)
from sms_sender.mailings.models import (
    ACTIVE_MAILING_STATUSES,
    Mailing,
    MailingStatus,
)
from sms_sender.mailings.schemas import (
    MailingCreate,
    MailingFilter,
    MailingPreview,
    MailingPreviewRequest,
    MailingRead,
    MailingUpdate,
    SendWindow,
    SkippedCounts,
    time_to_minutes,
)
from sms_sender.providers.base import NO_TEXT_LIMITS, TextLimits
from sms_sender.reports import repository as reports_repository
from sms_sender.reports.schemas import ReportCounts

# Once a mailing is running or paused its reports are (or will be) snapshots of its start,
# message and filter; the end and the send window only steer the sending of those reports.
EDITABLE_WHILE_ACTIVE = frozenset({"end_at", "send_window"})


@dataclass(frozen=True)
class MailingSpec:
    """What a user decides about a mailing, in the API's terms; an edit makes a new spec."""

    start_at: datetime
    end_at: datetime
    message_id: int
    filter: MailingFilter
    send_window: SendWindow | None
    purpose: MailingPurpose

    @classmethod
    def of(cls, mailing: Mailing) -> MailingSpec:
        return cls(
            start_at=mailing.start_at,
            end_at=mailing.end_at,
            message_id=mailing.message_id,
            filter=MailingFilter(
                operator_codes=list(mailing.filter_operator_codes),
                tags=list(mailing.filter_tags),
            ),
            send_window=SendWindow.from_minutes(mailing.send_window_start, mailing.send_window_end),
            purpose=MailingPurpose(mailing.purpose),
        )

    def edited(self, payload: MailingUpdate) -> MailingSpec:
        """This spec with the fields the PATCH body sent."""
        sent = {name: getattr(payload, name) for name in payload.model_fields_set}
        return dataclasses.replace(self, **sent)

    def fields_changed_in(self, other: MailingSpec) -> list[str]:
        return [
            field.name
            for field in dataclasses.fields(self)
            if getattr(self, field.name) != getattr(other, field.name)
        ]

    def write_to(self, mailing: Mailing) -> None:
        mailing.start_at = self.start_at
        mailing.end_at = self.end_at
        mailing.message_id = self.message_id
        mailing.filter_operator_codes = list(self.filter.operator_codes)
        mailing.filter_tags = list(self.filter.tags)
        window = self.send_window
        mailing.send_window_start = time_to_minutes(window.start) if window else None
        mailing.send_window_end = time_to_minutes(window.end) if window else None
        mailing.purpose = self.purpose


def to_read(mailing: Mailing, counts: Mapping[str, int]) -> MailingRead:
    spec = MailingSpec.of(mailing)
    return MailingRead(
        id=mailing.id,
        start_at=spec.start_at,
        end_at=spec.end_at,
        message_id=spec.message_id,
        filter=spec.filter,
        send_window=spec.send_window,
        purpose=spec.purpose,
        status=MailingStatus(mailing.status),
        paused_reason=mailing.paused_reason,
        created_at=mailing.created_at,
        updated_at=mailing.updated_at,
        started_at=mailing.started_at,
        finished_at=mailing.finished_at,
        counts=ReportCounts.of(counts),
    )


async def describe(session: AsyncSession, mailings: Sequence[Mailing]) -> list[MailingRead]:
    """The mailings as the API shows them, their report counts taken in one grouped query."""
    counts = await reports_repository.count_by_status(session, [mailing.id for mailing in mailings])
    return [to_read(mailing, counts.get(mailing.id, {})) for mailing in mailings]


async def describe_one(session: AsyncSession, mailing: Mailing) -> MailingRead:
    return (await describe(session, [mailing]))[0]


async def get(session: AsyncSession, mailing_id: int) -> Mailing:
    mailing = await repository.get(session, mailing_id)
    if mailing is None:
        raise NotFound.because(reasons.MAILING_NOT_FOUND, mailing_id=mailing_id)
    return mailing


async def page(
    session: AsyncSession, *, status: MailingStatus | None, after_id: int, limit: int
) -> Sequence[Mailing]:
    return await repository.page(session, status=status, after_id=after_id, limit=limit)


async def create(
    session: AsyncSession,
    payload: MailingCreate,
    now: datetime,
    text_limits: TextLimits = NO_TEXT_LIMITS,
) -> Mailing:
    """A new mailing: scheduled, or running with its reports made if its window contains now.

    ``text_limits`` are the configured provider's (``providers.text_limits(settings)``; the API
    and the console pass them): a text it cannot send is refused here rather than failing
    every report at send time.
    """
    spec = MailingSpec(
        start_at=payload.start_at,
        end_at=payload.end_at,
        message_id=payload.message_id,
        filter=payload.filter,
        send_window=payload.send_window,
        purpose=payload.purpose,
    )
    _check_times(spec, now, blame="end_at")
    await _check_message(session, spec.message_id, text_limits)
    mailing = Mailing(status=MailingStatus.SCHEDULED, created_at=now, updated_at=now)
    spec.write_to(mailing)
    await repository.add(session, mailing)
    await record(session, AuditAction.CREATED, AuditTarget.MAILING, mailing.id)
    await start_if_due(session, mailing, now)
    await notify(session, CHANNEL_MAILINGS)
    return mailing


async def preview(session: AsyncSession, request: MailingPreviewRequest) -> MailingPreview:
    """Whom a mailing would reach now: the clients matching, and those it would skip and why."""
    matching, skipped = await fan_out.count_matching(
        session,
        operator_codes=request.filter.operator_codes,
        tags=request.filter.tags,
        purpose=request.purpose,
    )
    return MailingPreview(
        matching=matching,
        will_send=matching - sum(skipped.values()),
        skipped=SkippedCounts(**{reason.value: count for reason, count in skipped.items()}),
    )


async def update(
    session: AsyncSession,
    mailing_id: int,
    payload: MailingUpdate,
    now: datetime,
    text_limits: TextLimits = NO_TEXT_LIMITS,
) -> Mailing:
    """Apply the fields sent; a field sent with its current value counts as unchanged."""
    mailing = await get_for_change(session, mailing_id)
    current = MailingSpec.of(mailing)
    wanted = current.edited(payload)
    changed = current.fields_changed_in(wanted)
    _check_editable(mailing, changed)
    if not changed:
        return mailing
    if "start_at" in changed or "end_at" in changed:
        _check_times(wanted, now, blame="end_at" if "end_at" in changed else "start_at")
    if "message_id" in changed:
        await _check_message(session, wanted.message_id, text_limits)
    wanted.write_to(mailing)
    mailing.updated_at = now
    await session.flush()
    await record(session, AuditAction.CHANGED, AuditTarget.MAILING, mailing.id, ", ".join(changed))
    if "send_window" in changed and mailing.status in ACTIVE_MAILING_STATUSES:
        # Reports put off until the old window opened are looked at again under the new one.
        await reports_repository.make_waiting_due(session, mailing.id, now)
        await notify(session, CHANNEL_REPORTS)
    await start_if_due(session, mailing, now)
    await notify(session, CHANNEL_MAILINGS)
    return mailing


async def delete(session: AsyncSession, mailing_id: int) -> None:
    """Delete a mailing that is not sending (its reports go with it)."""
    mailing = await get_for_change(session, mailing_id)
    if mailing.status in ACTIVE_MAILING_STATUSES:
        raise Conflict.because(
            reasons.MAILING_DELETE_ACTIVE, mailing_id=mailing_id, status=mailing.status
        )
    await reports_repository.delete_of_mailing(session, mailing.id)
    await repository.delete_mailing(session, mailing)
    await record(session, AuditAction.DELETED, AuditTarget.MAILING, mailing_id)
    await notify(session, CHANNEL_MAILINGS)


def _check_editable(mailing: Mailing, changed: Sequence[str]) -> None:
    status = mailing.status
    if status not in UNFINISHED:
        raise Conflict.because(reasons.MAILING_NOT_EDITABLE, mailing_id=mailing.id, status=status)
    if status in ACTIVE_MAILING_STATUSES:
        for field in changed:
            if field not in EDITABLE_WHILE_ACTIVE:
                raise Conflict.because(
                    reasons.MAILING_FIELD_FROZEN, field=field, mailing_id=mailing.id, status=status
                )


def _check_times(spec: MailingSpec, now: datetime, *, blame: str) -> None:
    """end_at after start_at and in the future; ``blame`` is the field the error points at."""
    if spec.end_at <= spec.start_at:
        raise InvalidInput.field(
            ["body", blame],
            reasons.END_BEFORE_START,
            end_at=spec.end_at.isoformat(),
            start_at=spec.start_at.isoformat(),
        )
    if spec.end_at <= now:
        raise InvalidInput.field(
            ["body", "end_at"],
            reasons.END_IN_PAST,
            end_at=spec.end_at.isoformat(),
            now=now.isoformat(),
        )


async def _check_message(session: AsyncSession, message_id: int, limits: TextLimits) -> None:
    text = await repository.find_message_text(session, message_id)
    if text is None:
        raise InvalidInput.field(
            ["body", "message_id"], reasons.MAILING_MESSAGE_MISSING, message_id=message_id
        )
    problem = limits.problem(text)
    if problem is not None:
        raise InvalidInput.field(
            ["body", "message_id"],
            reasons.MAILING_MESSAGE_UNSENDABLE,
            message_id=message_id,
            problem=problem,
        )


async def next_scheduled(session: AsyncSession, limit: int) -> list[MailingRead]:
    """The scheduled mailings that start soonest, as the API shows them."""
    return await describe(session, await repository.next_scheduled(session, limit))


__all__ = [
    "EDITABLE_WHILE_ACTIVE",
    "MailingSpec",
    "cancel",
    "create",
    "delete",
    "describe",
    "describe_one",
    "get",
    "next_scheduled",
    "page",
    "pause",
    "preview",
    "resend_unknown",
    "resume",
    "start_mailing",
    "to_read",
    "update",
]
