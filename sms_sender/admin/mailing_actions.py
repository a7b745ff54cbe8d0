"""What an operator does to one mailing: edit, delete, resend the unknown, pause/resume/cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sms_sender import reasons
from sms_sender.admin.forms import form_of, parse
from sms_sender.admin.mailing_forms import form_errors, mailing_fields
from sms_sender.admin.mailings import detail_page
from sms_sender.admin.pages import PREFIX, ConsoleRoute
from sms_sender.auth.endpoints import Operator
from sms_sender.errors import AppError, InvalidInput
from sms_sender.mailings import service
from sms_sender.mailings.schemas import MailingUpdate
from sms_sender.providers.registry import text_limits
from sms_sender.web import ClockDep, SessionDep, SettingsDep

router = APIRouter(prefix=f"{PREFIX}/mailings", route_class=ConsoleRoute, include_in_schema=False)

CONTROLS = {"pause": service.pause, "resume": service.resume, "cancel": service.cancel}


@router.post("/{mailing_id}/edit", response_class=HTMLResponse)
async def edit_mailing(
    request: Request,
    mailing_id: int,
    user: Operator,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    """What may change: end and send window, and the start too while it is scheduled."""
    values = await form_of(request)
    try:
        fields = mailing_fields(values, with_start="start_at" in values, whole=False)
        mailing = await service.update(
            session, mailing_id, parse(MailingUpdate, fields), clock.now(), text_limits(settings)
        )
    except AppError as error:
        await session.rollback()
        current = await service.describe_one(session, await service.get(session, mailing_id))
        return await detail_page(
            request,
            session,
            current,
            values=values,
            errors=form_errors(error, request),
            status=error.status_code,
        )
    return RedirectResponse(f"{PREFIX}/mailings/{mailing.id}?saved=1", status_code=303)


@router.post("/{mailing_id}/delete")
async def delete_mailing(mailing_id: int, user: Operator, session: SessionDep) -> Response:
    await service.delete(session, mailing_id)
    return RedirectResponse(f"{PREFIX}/mailings?deleted={mailing_id}", status_code=303)


@router.post("/{mailing_id}/resend-unknown")
async def resend_unknown(
    mailing_id: int, user: Operator, session: SessionDep, clock: ClockDep
) -> Response:
    """Queue the unknown reports again (the operator checked they did not arrive)."""
    requeued = await service.resend_unknown(session, mailing_id, user.name, clock.now())
    return RedirectResponse(
        f"{PREFIX}/mailings/{mailing_id}?done=resend-unknown&requeued={requeued}", status_code=303
    )


@router.post("/{mailing_id}/{action}")
async def control_mailing(
    mailing_id: int, action: str, user: Operator, session: SessionDep, clock: ClockDep
) -> Response:
    """Pause, resume or cancel: the API's own rules, so the same 409s and texts."""
    control = CONTROLS.get(action)
    if control is None:
        raise InvalidInput.because(reasons.MAILING_ACTION_UNKNOWN, action=action)
    await control(session, mailing_id, clock.now())
    return RedirectResponse(f"{PREFIX}/mailings/{mailing_id}?done={action}", status_code=303)
