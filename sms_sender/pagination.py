"""Keyset pagination shared by every list endpoint: ``?limit=&cursor=`` in, ``Page`` out."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from sms_sender.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= to get the next page; null on the last page."
    )


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after_id: int


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, _, value = base64.urlsafe_b64decode(padded).decode().partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput.field(
            ["query", "cursor"], "cursor is not one this API returned; start without it"
        ) from None


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> PageRequest:
    """FastAPI dependency reading ``limit`` and ``cursor``."""
    return PageRequest(limit=limit, after_id=decode_cursor(cursor) if cursor else 0)


def next_cursor(ids: Sequence[int], limit: int) -> str | None:
    """A cursor when the repository fetched ``limit + 1`` rows, i.e. there is another page."""
    return encode_cursor(ids[limit - 1]) if len(ids) > limit else None
