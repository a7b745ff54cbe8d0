from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from sms_sender.db import MAX_ID
from sms_sender.mailings import service, stats
from sms_sender.mailings.models import MailingStatus
from sms_sender.mailings.schemas import (
    MailingCreate,
    MailingPreview,
    MailingPreviewRequest,
    MailingRead,
    MailingStatsDetail,
    MailingUpdate,
    OverallStats,
    Requeued,
)
from sms_sender.pagination import Page, PageRequest, next_cursor, page_request
from sms_sender.providers.registry import text_limits
from sms_sender.web import ClockDep, ReadSessionDep, SessionDep, SettingsDep

_log = structlog.get_logger(__name__)

router = APIRouter(prefix="/mailings", tags=["mailings"])

MailingId = Annotated[int, Path(ge=1, le=MAX_ID, description="The mailing's id.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a mailing",
    description="A mailing whose [start_at, end_at) contains now starts at once (status "
    "`running`, its reports created); a later one is `scheduled` and starts by itself. "
    "A message text the configured provider cannot send (SMS Aero: 2 to 640 characters) "
    "is a 422.",
)
async def create_mailing(
    payload: MailingCreate, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> MailingRead:
    mailing = await service.create(session, payload, clock.now(), text_limits(settings))
    return await service.describe_one(session, mailing)


@router.post(
    "/preview",
    summary="How many clients a mailing would reach, and whom it would skip and why",
    description="Counts the clients matching the filter now, and of them those a mailing of "
    "this purpose would skip: opted out (any purpose) or, for advertising, without consent. "
    "Nothing is saved.",
)
async def preview_mailing(
    payload: MailingPreviewRequest, session: ReadSessionDep
) -> MailingPreview:
    return await service.preview(session, payload)


@router.get("", summary="List mailings, each with its report counts")
async def list_mailings(
    session: ReadSessionDep,
    page: Annotated[PageRequest, Depends(page_request)],
    mailing_status: Annotated[
        MailingStatus | None, Query(alias="status", description="Only mailings in this status.")
    ] = None,
) -> Page[MailingRead]:
    mailings = await service.page(
        session, status=mailing_status, after_id=page.after_id, limit=page.limit
    )
    return Page[MailingRead](
        items=await service.describe(session, mailings[: page.limit]),
        next_cursor=next_cursor([mailing.id for mailing in mailings], page.limit),
    )


@router.get("/{mailing_id:int}", summary="Read a mailing")
async def read_mailing(mailing_id: MailingId, session: ReadSessionDep) -> MailingRead:
    return await service.describe_one(session, await service.get(session, mailing_id))


@router.patch(
    "/{mailing_id:int}",
    summary="Change a mailing",
    description="Only the fields sent change. A scheduled mailing takes any change; a running "
    "or paused one only end_at and send_window (409 naming the field otherwise); a finished or "
    "cancelled one none (409).",
)
async def update_mailing(
    mailing_id: MailingId,
    payload: MailingUpdate,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> MailingRead:
    mailing = await service.update(session, mailing_id, payload, clock.now(), text_limits(settings))
    return await service.describe_one(session, mailing)


@router.delete(
    "/{mailing_id:int}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a mailing and its reports",
    description="409 while it is running or paused: cancel it first.",
)
async def delete_mailing(mailing_id: MailingId, session: SessionDep) -> Response:
    await service.delete(session, mailing_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{mailing_id:int}/pause",
    summary="Pause a running or scheduled mailing",
    description="Nothing more is handed to providers until it is resumed; 409 for a mailing "
    "in any other status.",
)
async def pause_mailing(mailing_id: MailingId, session: SessionDep, clock: ClockDep) -> MailingRead:
    mailing = await service.pause(session, mailing_id, clock.now())
    return await service.describe_one(session, mailing)


@router.post(
    "/{mailing_id:int}/resume",
    summary="Resume a paused mailing",
    description="It runs again if now is within [start_at, end_at) (starting it if it never "
    "started), or goes back to `scheduled` if start_at is still ahead; `paused_reason` is "
    "cleared (resume a mailing the engine paused once its cause, e.g. no funds, is fixed). "
    "409 if it is not paused or its end_at has passed.",
)
async def resume_mailing(
    mailing_id: MailingId, session: SessionDep, clock: ClockDep
) -> MailingRead:
    mailing = await service.resume(session, mailing_id, clock.now())
    return await service.describe_one(session, mailing)


@router.post(
    "/{mailing_id:int}/cancel",
    summary="Cancel a mailing",
    description="Every report not yet handed to a provider becomes `cancelled`; messages "
    "already in flight are recorded as the provider answers. 409 if it already finished or "
    "was cancelled.",
)
async def cancel_mailing(
    mailing_id: MailingId, session: SessionDep, clock: ClockDep
) -> MailingRead:
    mailing = await service.cancel(session, mailing_id, clock.now())
    return await service.describe_one(session, mailing)


@router.post(
    "/{mailing_id:int}/resend-unknown",
    summary="Send the mailing's unknown reports again",
    description="Reports in `unknown` (the provider may or may not have the message: its "
    "answer was lost, or a worker died mid-send) are never re-sent automatically, since the "
    "client could get the message twice. An operator who has checked with the provider may "
    "queue them again: they become `pending` and are sent like any other (a paused mailing's "
    "wait for its resume; a mailing that finished before its end runs again). Answers how "
    "many were queued; the request is logged with the token's name. 409 if the mailing was "
    "cancelled or its end_at has passed.",
)
async def resend_unknown(
    mailing_id: MailingId, request: Request, session: SessionDep, clock: ClockDep
) -> Requeued:
    asked_by: str = request.state.token_name
    requeued = await service.resend_unknown(session, mailing_id, asked_by, clock.now())
    _log.info(
        "unknown reports queued again", mailing_id=mailing_id, requeued=requeued, asked_by=asked_by
    )
    return Requeued(requeued=requeued)


# Statistics: outside the /mailings prefix (GET /stats), so a router of their own.
stats_router = APIRouter()


@stats_router.get(
    "/mailings/{mailing_id:int}/stats",
    tags=["statistics", "mailings"],
    summary="A mailing's reports by status",
)
async def read_mailing_stats(
    mailing_id: MailingId,
    session: ReadSessionDep,
) -> MailingStatsDetail:
    return await stats.mailing_stats(session, mailing_id)


@stats_router.get(
    "/stats",
    tags=["statistics"],
    summary="Reports by status over every mailing, and per mailing",
)
async def read_overall_stats(session: ReadSessionDep) -> OverallStats:
    return await stats.overall_stats(session)
