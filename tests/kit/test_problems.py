from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from genai_service.kit.errors import Conflict, TooManyRequests

router = APIRouter(prefix="/probe")


class Widget(BaseModel):
    name: str = Field(min_length=2)
    size: int = Field(gt=0)


@router.post("/widgets", status_code=201)
async def create_widget(widget: Widget) -> Widget:
    return widget


@router.get("/conflict")
async def conflict() -> None:
    raise Conflict("widget 'x' already exists")


@router.get("/throttled")
async def throttled() -> None:
    raise TooManyRequests("slow down", retry_after=7)


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("database password is hunter2")


@router.get("/v1-like")
async def not_openai() -> None:
    raise Conflict("plain")


@pytest.fixture
def probe_app(app: FastAPI) -> FastAPI:
    app.include_router(router)
    return app


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    for key in ("type", "title", "status", "detail", "instance", "request_id"):
        assert key in body, key
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.mark.usefixtures("probe_app")
async def test_validation_errors_list_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/probe/widgets", json={"name": "x", "size": -1})
    body = assert_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"name", "size"}
    assert body["instance"] == "/probe/widgets"


@pytest.mark.usefixtures("probe_app")
async def test_malformed_json_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/probe/widgets", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/no/such/thing"), 404)
    assert body["title"] == "Not Found"


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/healthz"), 405)


@pytest.mark.usefixtures("probe_app")
async def test_domain_error_keeps_its_status_title_and_headers(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/probe/conflict"), 409)
    assert body["detail"] == "widget 'x' already exists"
    assert str(body["type"]).endswith(":conflict")
    response = await client.get("/probe/throttled")
    assert_problem(response, 429)
    assert response.headers["retry-after"] == "7"


@pytest.mark.usefixtures("probe_app")
async def test_unhandled_error_reveals_nothing_and_is_logged(
    client: httpx.AsyncClient, captured_logs: list[str]
) -> None:
    response = await client.get("/probe/boom")
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    (traceback,) = [line for line in captured_logs if "Traceback" in line]
    assert traceback.startswith(f"{body['request_id']} ")  # the id the client is told to quote
    assert "RuntimeError" in traceback


class ContextTooLong(Conflict):
    status_code = 400
    slug = "context-length-exceeded"


openai_like = APIRouter(prefix="/v1/probe")


@openai_like.get("/too-long")
@router.get("/too-long")
async def too_long() -> None:
    raise ContextTooLong("the prompt is longer than the context window")


async def test_v1_codes_are_openai_snake_case_and_problem_types_stay_kebab(
    probe_app: FastAPI, client: httpx.AsyncClient
) -> None:
    probe_app.include_router(openai_like)
    openai = (await client.get("/v1/probe/too-long")).json()["error"]
    assert openai["code"] == "context_length_exceeded"
    assert openai["type"] == "invalid_request_error"
    problem = assert_problem(await client.get("/probe/too-long"), 400)
    assert problem["type"] == "urn:genai-service:problem:context-length-exceeded"
