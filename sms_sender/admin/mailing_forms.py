"""A mailing's console forms and the API's JSON bodies: local times in a named zone, lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request

from sms_sender import reasons
from sms_sender.admin.pages import error_text, field_errors, is_zone
from sms_sender.errors import AppError, InvalidInput
from sms_sender.mailings.schemas import MailingRead


def edit_values(mailing: MailingRead, zone: str) -> dict[str, Any]:
    """The edit form's values of a mailing: its times as local inputs in ``zone``."""
    window = mailing.send_window
    return {
        "zone": zone,
        "start_at": _local_input(mailing.start_at, zone),
        "end_at": _local_input(mailing.end_at, zone),
        "window_start": window.start if window else "",
        "window_end": window.end if window else "",
    }


def _local_input(moment: datetime, zone: str) -> str:
    """The value of an <input type=datetime-local> showing ``moment`` in ``zone``."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def form_errors(error: AppError, request: Request) -> dict[str, str]:
    """Errors beside their fields, and a conflict's (or a field-less error's) above the form."""
    errors = field_errors(error, request)
    if not errors or error.status_code == 409:
        errors[""] = error_text(error, request)
    return errors


def mailing_fields(
    values: dict[str, Any], *, with_start: bool, whole: bool = True
) -> dict[str, Any]:
    """The API's JSON body from the form: local times in the named zone become aware ones."""
    zone_name = str(values.get("zone", "")).strip() or "UTC"
    if not is_zone(zone_name):
        raise InvalidInput.field(["zone"], reasons.ZONE_UNKNOWN, zone=zone_name)
    zone = ZoneInfo(zone_name)
    fields: dict[str, Any] = {"end_at": _aware(values.get("end_at"), zone, "end_at")}
    if with_start:
        fields["start_at"] = _aware(values.get("start_at"), zone, "start_at")
    window_start, window_end = values.get("window_start", ""), values.get("window_end", "")
    fields["send_window"] = (
        {"start": window_start, "end": window_end} if window_start or window_end else None
    )
    if whole:
        raw_message = str(values.get("message_id", ""))
        if not raw_message.isdigit():
            raise InvalidInput.field(["message_id"], reasons.MESSAGE_NOT_CHOSEN)
        fields["message_id"] = int(raw_message)
        fields["filter"] = {
            "tags": listed(values.get("tags")),
            "operator_codes": listed(values.get("operator_codes")),
        }
        fields["purpose"] = values.get("purpose") or "service"
    return fields


def listed(value: Any) -> list[str]:
    """A form field given once, many times or not at all, as a list."""
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list) else [value]


def _aware(value: Any, zone: ZoneInfo, field: str) -> str:
    try:
        local = datetime.fromisoformat(str(value or ""))
    except ValueError:
        raise InvalidInput.field([field], reasons.DATE_AND_TIME) from None
    return local.replace(tzinfo=zone).isoformat()
