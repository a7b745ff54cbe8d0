"""Mailings' pages: the list, the new-mailing form with its filter builder, a live detail page
and its reports (the actions on a mailing: mailing_actions.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from sms_sender.admin import exports
from sms_sender.admin.forms import cursor_of, form_of, next_cursor_of, parse
from sms_sender.admin.mailing_forms import edit_values, form_errors, listed, mailing_fields
from sms_sender.admin.pages import PREFIX, ConsoleRoute, render, zone_of
from sms_sender.auth.endpoints import CurrentUser, Operator
from sms_sender.clients import service as clients
from sms_sender.errors import AppError
from sms_sender.mailings import service
from sms_sender.mailings.models import MailingStatus
from sms_sender.mailings.schemas import (
    MailingCreate,
    MailingPreview,
    MailingPreviewRequest,
    MailingRead,
)
from sms_sender.messages import service as messages
from sms_sender.pagination import DEFAULT_LIMIT
from sms_sender.providers.registry import text_limits
from sms_sender.reports import service as reports
from sms_sender.reports.models import ReportStatus
from sms_sender.web import ClockDep, ReadSessionDep, SessionDep, SettingsDep

router = APIRouter(prefix=f"{PREFIX}/mailings", route_class=ConsoleRoute, include_in_schema=False)

MESSAGES_OFFERED = 200


@router.get("", response_class=HTMLResponse)
async def list_mailings(request: Request, user: CurrentUser, session: ReadSessionDep) -> Response:
    raw_status = request.query_params.get("status", "")
    status = MailingStatus(raw_status) if raw_status in set(MailingStatus) else None
    found = await service.page(
        session, status=status, after_id=cursor_of(request), limit=DEFAULT_LIMIT
    )
    return render(
        request,
        "mailings.html",
        {
            "mailings": await service.describe(session, found[:DEFAULT_LIMIT]),
            "next_cursor": next_cursor_of([mailing.id for mailing in found]),
            "status": status,
            "statuses": list(MailingStatus),
        },
    )


@router.get("/new", response_class=HTMLResponse)
async def new_mailing(request: Request, user: Operator, session: ReadSessionDep) -> Response:
    values = {"zone": zone_of(request), "tags": [], "operator_codes": [], "purpose": "service"}
    return await _create_form(request, session, values, {})


@router.post("/new", response_class=HTMLResponse)
async def create_mailing(
    request: Request, user: Operator, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> Response:
    values = await form_of(request)
    try:
        payload = parse(MailingCreate, mailing_fields(values, with_start=True))
        mailing = await service.create(session, payload, clock.now(), text_limits(settings))
    except AppError as error:
        await session.rollback()
        return await _create_form(
            request, session, values, form_errors(error, request), error.status_code
        )
    return RedirectResponse(f"{PREFIX}/mailings/{mailing.id}?saved=1", status_code=303)


@router.post("/preview")
async def preview_mailing(
    request: Request, user: Operator, session: ReadSessionDep
) -> MailingPreview:
    """The form's live "N clients match": the API's own preview of a filter and purpose."""
    values = await request.json()
    fields = {
        "filter": {
            "tags": listed(values.get("tags")),
            "operator_codes": listed(values.get("operator_codes")),
        },
        "purpose": values.get("purpose") or "service",
    }
    return await service.preview(session, parse(MailingPreviewRequest, fields))


@router.get("/{mailing_id}", response_class=HTMLResponse)
async def mailing_detail(
    request: Request, mailing_id: int, user: CurrentUser, session: ReadSessionDep
) -> Response:
    mailing = await service.describe_one(session, await service.get(session, mailing_id))
    return await detail_page(request, session, mailing, values=None, errors={})


@router.get("/{mailing_id}/progress.json")
async def mailing_progress(
    mailing_id: int, user: CurrentUser, session: ReadSessionDep, clock: ClockDep
) -> dict[str, Any]:
    mailing = await service.describe_one(session, await service.get(session, mailing_id))
    return {
        "now": clock.now().isoformat(),
        "status": mailing.status,
        "paused_reason": mailing.paused_reason,
        "total": mailing.counts.total,
        "by_status": {str(status): count for status, count in mailing.counts.by_status.items()},
        "end_at": mailing.end_at.isoformat(),
    }


@router.get("/{mailing_id}/live", response_class=HTMLResponse)
async def mailing_live(
    request: Request, mailing_id: int, user: CurrentUser, session: ReadSessionDep
) -> Response:
    """The page's parts that follow the mailing: its actions and its reports table, as HTML.

    The page asks every 2 s while the mailing runs (and once when its status changes), with
    its own query (status, phone, cursor), so the table stays filtered and one page long.
    """
    mailing = await service.describe_one(session, await service.get(session, mailing_id))
    context = await _detail_context(request, session, mailing, values=None, errors={})
    return render(request, "mailing_live.html", context)


@router.get("/{mailing_id}/reports.csv")
async def export_reports(
    request: Request, mailing_id: int, user: CurrentUser, session: ReadSessionDep
) -> Response:
    """Every report of the mailing matching the page's filters, streamed in keyset batches."""
    await service.get(session, mailing_id)  # 404 before the download starts
    status, phone = _report_filters(request)
    sessionmaker = request.app.state.read_sessionmaker

    async def rows() -> AsyncIterator[str]:
        yield exports.csv_line(exports.REPORT_COLUMNS)
        after_id = 0
        while True:
            # A session per batch: a long download holds no transaction (or SQLite snapshot).
            async with sessionmaker() as batch_session:
                batch = await reports.page(
                    batch_session,
                    mailing_id=mailing_id,
                    status=status,
                    phone=phone,
                    after_id=after_id,
                    limit=exports.BATCH,
                )
            for report in batch:
                yield exports.report_line(report)
            if len(batch) <= exports.BATCH:
                return
            after_id = batch[exports.BATCH - 1].id

    filename = f"mailing-{mailing_id}-reports.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _report_filters(request: Request) -> tuple[ReportStatus | None, str | None]:
    raw_status = request.query_params.get("report_status", "")
    status = ReportStatus(raw_status) if raw_status in set(ReportStatus) else None
    phone = request.query_params.get("phone", "").strip()[:11] or None
    return status, phone


async def detail_page(
    request: Request,
    session: Any,
    mailing: MailingRead,
    *,
    values: dict[str, Any] | None,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    """A mailing's page, with the edit form's values and errors (those of a refused edit)."""
    context = await _detail_context(request, session, mailing, values=values, errors=errors)
    context["message"] = await messages.get(session, mailing.message_id)
    return render(request, "mailing.html", context, status_code=status)


async def _detail_context(
    request: Request,
    session: Any,
    mailing: MailingRead,
    *,
    values: dict[str, Any] | None,
    errors: dict[str, str],
) -> dict[str, Any]:
    """What the page's actions and its reports table show: one keyset page, filtered."""
    report_status, phone = _report_filters(request)
    found = await reports.page(
        session,
        mailing_id=mailing.id,
        status=report_status,
        phone=phone,
        after_id=cursor_of(request),
        limit=DEFAULT_LIMIT,
    )
    return {
        "mailing": mailing,
        "reports": found[:DEFAULT_LIMIT],
        "next_cursor": next_cursor_of([report.id for report in found]),
        "report_status": report_status,
        "phone": phone or "",
        "report_statuses": list(ReportStatus),
        "values": edit_values(mailing, zone_of(request)) | (values or {}),
        "errors": errors,
        "page_path": f"{PREFIX}/mailings/{mailing.id}",
    }


async def _create_form(
    request: Request,
    session: Any,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    offered = await messages.page(session, after_id=0, limit=MESSAGES_OFFERED)
    return render(
        request,
        "mailing_form.html",
        {
            "values": values,
            "errors": errors,
            "facets": await clients.facets(session),
            "messages": [messages.to_read(message) for message in offered[:MESSAGES_OFFERED]],
        },
        status_code=status,
    )
