"""Reading the console's HTML forms into the API's own schemas, so both refuse the same input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from sms_sender.errors import InvalidInput
from sms_sender.pagination import DEFAULT_LIMIT

Schema = TypeVar("Schema", bound=BaseModel)


async def form_of(request: Request) -> dict[str, Any]:
    """The submitted fields; a field given several times (checkboxes) becomes a list."""
    form = await request.form()
    fields: dict[str, Any] = {}
    for key in form:
        if key == "csrf_token":
            continue
        values = [value for value in form.getlist(key) if isinstance(value, str)]
        fields[key] = values if len(values) > 1 or key.endswith("[]") else values[0]
    return {key.removesuffix("[]"): value for key, value in fields.items()}


def parse(schema: type[Schema], values: Mapping[str, Any]) -> Schema:
    """``schema`` from the form's values; a ValidationError becomes InvalidInput by field."""
    try:
        return schema.model_validate(dict(values))
    except ValidationError as invalid:
        errors = [
            {
                "loc": [str(part) for part in item["loc"]],
                "msg": str(item["msg"]).removeprefix("Value error, "),
                # pydantic's type, or our reason's code: the console translates by it.
                "code": item["type"],
                "values": item.get("ctx", {}),
            }
            for item in invalid.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc']) or 'form'}: {e['msg']}" for e in errors)
        raise InvalidInput(detail, errors=errors) from None


def blank_to_none(values: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """Empty text fields mean "not given", as a missing JSON key does in the API."""
    return {key: value for key, value in values.items() if not (key in names and value == "")}


def cursor_of(request: Request) -> int:
    raw = request.query_params.get("cursor", "")
    return int(raw) if raw.isdigit() and len(raw) <= 18 else 0


def next_cursor_of(ids: list[int], limit: int = DEFAULT_LIMIT) -> int | None:
    return ids[limit - 1] if len(ids) > limit else None
