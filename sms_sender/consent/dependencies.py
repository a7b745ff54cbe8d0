"""The request dependency that gives consent's phone hasher to the clients' and consent's routes.

Apart from sms_sender.web, whose dependencies every domain's routes use, so the messages and
reports routes do not depend on consent through it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sms_sender.consent.rules import PhoneHasher
from sms_sender.consent.service import hasher_for


async def get_phone_hasher(request: Request) -> PhoneHasher:
    """The suppression list's phone hasher, its key read once per process.

    Read in a read-only session of its own: on SQLite the request's unit of work (and the
    write lock) must start only when the handler first writes.
    """
    state = request.app.state
    hasher: PhoneHasher | None = getattr(state, "phone_hasher", None)
    if hasher is None:
        key = state.settings.suppression_key.get_secret_value()
        async with state.read_sessionmaker() as session:
            hasher = state.phone_hasher = await hasher_for(session, key)
    return hasher


PhoneHasherDep = Annotated[PhoneHasher, Depends(get_phone_hasher)]
