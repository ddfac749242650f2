"""The `paginate(skip, limit)` dependency of the design source, and the page envelope of lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 2**31 - 1
"""Databases hold 64-bit integers at most: an unbounded offset past 2**63 fails in the driver."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageParams:
    offset: int
    limit: int


async def paginate(
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description=f"Items to skip (at most {MAX_OFFSET}).")
    ] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT}).")
    ] = DEFAULT_LIMIT,
) -> PageParams:
    return PageParams(offset=offset, limit=limit)


PaginationDep = Annotated[PageParams, Depends(paginate)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, items: Sequence[T], *, total: int, params: PageParams) -> Page[T]:
        return cls(items=list(items), total=total, limit=params.limit, offset=params.offset)
