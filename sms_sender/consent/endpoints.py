"""HTTP routes of consent: opt-outs by phone and by stop list, and the inbound webhook through
which a gateway forwards replies such as STOP. A client's own opt-out and consent history are
client routes (``clients/endpoints.py``) that call this package's service."""

from __future__ import annotations

import hmac
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.security import APIKeyHeader

from sms_sender import reasons
from sms_sender.consent import service, stop_list
from sms_sender.consent.dependencies import PhoneHasherDep
from sms_sender.consent.schemas import (
    InboundMessage,
    InboundResult,
    PhoneOptOut,
    PhoneOptOutRequest,
    StopListResult,
)
from sms_sender.errors import Forbidden, Unauthorized
from sms_sender.web import CallerDep, ClockDep, SessionDep, SettingsDep

_log = structlog.get_logger(__name__)

router = APIRouter(tags=["consent"])
# As large as the client import's body may be (SMS_SENDER_MAX_IMPORT_BYTES; app.py).
STOP_LIST_PATH = "/clients/opt-out/import"
INBOUND_ACTOR = "inbound webhook"
STOP_LIST_SOURCE = "stop list import"  # when the import names no source of its own


@router.post(
    "/clients/opt-out",
    summary="Opt a phone out, whether or not a client has it",
    description="As POST /clients/{id}/opt-out for the client with this phone; a phone no "
    "client has is put on the suppression list, so it comes in opted out if it is added later.",
)
async def opt_out_phone(
    payload: PhoneOptOutRequest,
    session: SessionDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
) -> PhoneOptOut:
    owners = await service.opt_out_phones(
        session, [payload.phone], source=payload.source, actor=actor, hasher=hasher, now=clock.now()
    )
    return PhoneOptOut(phone=payload.phone, client_id=owners[payload.phone])


@router.post(
    STOP_LIST_PATH,
    summary="Import a stop list (CSV of phones to opt out)",
    description="A CSV with the header `phone`, sent as text/csv: every valid phone is opted "
    "out as by POST /clients/opt-out; bad lines are reported by number (the header is line 1).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "phone\n79001234567\n79161234567\n",
                }
            },
        }
    },
)
async def import_stop_list(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
    actor: CallerDep,
    source: Annotated[str, stop_list.SourceQuery] = STOP_LIST_SOURCE,
) -> StopListResult:
    return await stop_list.import_stop_list(
        session, request, source=source, actor=actor, hasher=hasher, now=clock.now()
    )


inbound_router = APIRouter(tags=["consent"])
# As large as the client import's body may be (SMS_SENDER_MAX_IMPORT_BYTES; app.py).
STOP_LIST_PATH = "/clients/opt-out/import"


async def inbound_secret(request: Request) -> None:
    """401 without the shared secret header, 403 with a wrong one (constant-time compare)."""
    settings = request.app.state.settings
    header = settings.inbound_secret_header
    given = request.headers.get(header)
    if not given:
        raise Unauthorized.because(reasons.INBOUND_SECRET_MISSING, header=header)
    expected = settings.inbound_secret.get_secret_value()
    if not expected:
        raise Forbidden.because(reasons.INBOUND_OFF, header=header)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        _log.warning("inbound webhook called with a wrong secret")
        raise Forbidden.because(reasons.INBOUND_SECRET_WRONG, header=header)


@inbound_router.post(
    "/inbound",
    summary="A reply forwarded by a gateway; a stop word opts the phone out",
    description="For gateways that forward replies. Authenticated by a shared secret in a "
    "header (SMS_SENDER_INBOUND_SECRET, header SMS_SENDER_INBOUND_SECRET_HEADER, default "
    "X-Inbound-Secret), not by a bearer token. A text that is one of the stop words "
    "(SMS_SENDER_STOP_WORDS, default STOP, СТОП, ОТПИСКА, ОТПИСАТЬСЯ; case, spaces and "
    "punctuation ignored) opts the phone out as POST /clients/opt-out does. Every reply is "
    "logged.",
    responses={
        401: {"description": "The shared secret header is missing."},
        403: {"description": "The secret does not match, or the webhook is off (no secret set)."},
    },
    dependencies=[
        Depends(inbound_secret),
        Depends(APIKeyHeader(name="X-Inbound-Secret", auto_error=False)),
    ],
)
async def receive_inbound(
    payload: InboundMessage,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    hasher: PhoneHasherDep,
) -> InboundResult:
    stop = service.is_stop_word(payload.text, settings.stop_words)
    client_id = None
    if stop:
        source = f"inbound reply {payload.text.strip()[:100]!r}"
        owners = await service.opt_out_phones(
            session,
            [payload.phone],
            source=source,
            actor=INBOUND_ACTOR,
            hasher=hasher,
            now=clock.now(),
        )
        client_id = owners[payload.phone]
    _log.info("inbound reply", client_id=client_id, stop=stop, text_length=len(payload.text))
    return InboundResult(stop=stop, client_id=client_id)
