"""A phone number as the directory keeps it: 11 digits starting with 7 (``7XXXXXXXXXX``).

Clients are keyed by it, and consent (opt-outs by phone, the stop list, inbound replies) reads
the same rule, so it lives below both.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from sms_sender import reasons
from sms_sender.errors import shown

# [0-9], not \d: \d also matches other scripts' digits, such as Arabic-Indic ones.
_PHONE = re.compile(r"7[0-9]{10}")


def _phone_from_json_number(value: Any) -> Any:
    """Accept 79001234567 as well as "79001234567": a phone starting with 7 loses no zeros."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def is_phone(text: str) -> bool:
    """Whether the text is a phone as the directory keeps it (the rule of :data:`Phone`)."""
    return _PHONE.fullmatch(text) is not None


def _check_phone(value: str) -> str:
    if not is_phone(value):
        raise reasons.PHONE_FORMAT.invalid(got=shown(value))
    return value


Phone = Annotated[
    str,
    BeforeValidator(_phone_from_json_number),
    AfterValidator(_check_phone),
    Field(
        description="11 digits starting with 7 (`7XXXXXXXXXX`); unique in the directory. "
        "A JSON number is accepted too.",
        examples=["79001234567"],
        json_schema_extra={"pattern": "^7[0-9]{10}$"},
    ),
]
