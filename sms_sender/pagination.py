"""Keyset pagination shared by every list endpoint: ``?limit=&cursor=`` in, ``Page`` out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

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
    return str(last_id)


# A cursor is the last id of the previous page. Clients treat it as opaque; its pattern is in
# the schema so that anything the schema admits is a cursor the API accepts.
CURSOR_PATTERN = r"^[0-9]{1,18}$"


async def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page.", pattern=CURSOR_PATTERN),
    ] = None,
) -> PageRequest:
    """FastAPI dependency reading ``limit`` and ``cursor`` (async: no thread-pool hop)."""
    return PageRequest(limit=limit, after_id=int(cursor) if cursor else 0)


def next_cursor(ids: Sequence[int], limit: int) -> str | None:
    """A cursor when the repository fetched ``limit + 1`` rows, i.e. there is another page."""
    return encode_cursor(ids[limit - 1]) if len(ids) > limit else None
