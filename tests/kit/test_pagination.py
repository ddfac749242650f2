from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from genai_service.kit.pagination import MAX_LIMIT, Page, PaginationDep

NUMBERS = list(range(250))
router = APIRouter()


@router.get("/probe/numbers")
async def list_numbers(page: PaginationDep) -> Page[int]:
    items = NUMBERS[page.offset : page.offset + page.limit]
    return Page.of(items, total=len(NUMBERS), params=page)


@pytest.fixture(autouse=True)
def _numbers_route(app: FastAPI) -> None:
    app.include_router(router)


async def test_default_page(client: httpx.AsyncClient) -> None:
    body = (await client.get("/probe/numbers")).json()
    assert body == {"items": list(range(20)), "total": 250, "limit": 20, "offset": 0}


async def test_offset_and_limit(client: httpx.AsyncClient) -> None:
    body = (await client.get("/probe/numbers", params={"offset": 240, "limit": 50})).json()
    assert body["items"] == list(range(240, 250))
    assert (body["limit"], body["offset"], body["total"]) == (50, 240, 250)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": MAX_LIMIT + 1}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": -5}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "abc"}, "offset"),
    ],
)
async def test_out_of_range_values_are_422(
    client: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    response = await client.get("/probe/numbers", params=params)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]
