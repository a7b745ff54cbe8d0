"""Reports of each message sent (``/reports``); their statistics are routed from mailings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from sms_sender.db import MAX_ID
from sms_sender.pagination import Page, PageRequest, next_cursor, page_request
from sms_sender.reports import service
from sms_sender.reports.models import ReportStatus
from sms_sender.reports.schemas import ReportRead
from sms_sender.web import ReadSessionDep

router = APIRouter()


@router.get("/reports", tags=["reports"], summary="List reports, one per message")
async def list_reports(
    session: ReadSessionDep,
    page: Annotated[PageRequest, Depends(page_request)],
    mailing_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this mailing's reports.")
    ] = None,
    report_status: Annotated[
        ReportStatus | None, Query(alias="status", description="Only reports in this status.")
    ] = None,
    phone: Annotated[
        str | None,
        Query(
            pattern="^7[0-9]{10}$",
            description="Only reports sent to this phone (7XXXXXXXXXX).",
            examples=["79161234567"],
        ),
    ] = None,
) -> Page[ReportRead]:
    reports = await service.page(
        session,
        mailing_id=mailing_id,
        status=report_status,
        phone=phone,
        after_id=page.after_id,
        limit=page.limit,
    )
    # One validation of the whole page (its loop runs in pydantic-core), not one per report.
    return Page[ReportRead].model_validate(
        {
            "items": reports[: page.limit],
            "next_cursor": next_cursor([report.id for report in reports], page.limit),
        },
        from_attributes=True,
    )


@router.get("/reports/{report_id}", tags=["reports"], summary="Read a report")
async def read_report(
    report_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The report's id.")],
    session: ReadSessionDep,
) -> ReportRead:
    return ReportRead.model_validate(await service.get(session, report_id))
