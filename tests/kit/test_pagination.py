from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from genai_service.kit.pagination import MAX_LIMIT, MAX_OFFSET, Page, PaginationDep
from tests.identity import Account

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
        ({"offset": MAX_OFFSET + 1}, "offset"),
        ({"offset": 2**63}, "offset"),
        ({"offset": "abc"}, "offset"),
    ],
)
async def test_out_of_range_values_are_422(
    client: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    response = await client.get("/probe/numbers", params=params)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_every_list_route_takes_the_largest_offset_and_refuses_beyond(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """Every route with `offset`, found in the OpenAPI document, on a real database: the bound is
    one the database can hold (2**63 used to be an OverflowError in the driver, a 500)."""
    conversation = await client.post("/api/conversations", json={}, headers=admin.headers)
    path_values = {"conversation_id": conversation.json()["id"]}
    schema = (await client.get("/openapi.json")).json()
    paths = [
        path.format(**path_values)
        for path, operations in schema["paths"].items()
        if any(p["name"] == "offset" for p in operations.get("get", {}).get("parameters", []))
    ]
    assert len(paths) >= 5
    for path in paths:
        largest = await client.get(path, params={"offset": MAX_OFFSET}, headers=admin.headers)
        assert (largest.status_code, largest.json()["items"]) == (200, []), path
        for offset in (MAX_OFFSET + 1, 2**63, 2**70):
            beyond = await client.get(path, params={"offset": offset}, headers=admin.headers)
            assert beyond.status_code == 422, path
