from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI, Request

from genai_service.app import create_app
from genai_service.inference.registry import ModelRegistry
from tests.conftest import client_for, make_settings

router = APIRouter(prefix="/probe")


@router.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    return {"received": len(await request.body())}


@pytest.fixture
async def small_body_client(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, database_url, http={"max_body_bytes": 1024})
    app = create_app(settings, models=ModelRegistry(chat={}, embeddings={}))
    app.include_router(router)
    async with LifespanManager(app), client_for(app) as client:
        yield client


async def test_request_id_is_generated_and_echoed(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_sane_client_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-42.abc"})
    assert response.headers["x-request-id"] == "trace-42.abc"


@pytest.mark.parametrize("bad", ["a" * 200, "has space", "<script>", "-leading-dash"])
async def test_an_insane_client_request_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


async def test_every_log_line_of_a_request_carries_its_id(
    client: httpx.AsyncClient, captured_logs: list[str]
) -> None:
    await client.get("/healthz", headers={"X-Request-ID": "req-log-check"})
    access = [line for line in captured_logs if "GET /healthz 200" in line]
    assert access
    assert all(line.startswith("req-log-check ") for line in access)


async def test_response_time_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    value = response.headers["x-response-time"]
    assert value.endswith("ms")
    assert float(value.removesuffix("ms")) >= 0


async def test_security_headers(client: httpx.AsyncClient) -> None:
    headers = (await client.get("/healthz")).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "strict-transport-security" not in headers  # development serves plain HTTP


async def test_body_within_the_limit_passes(small_body_client: httpx.AsyncClient) -> None:
    response = await small_body_client.post("/probe/upload", content=b"x" * 1024)
    assert response.status_code == 200
    assert response.json() == {"received": 1024}


async def test_declared_oversized_body_is_413_problem(small_body_client: httpx.AsyncClient) -> None:
    response = await small_body_client.post("/probe/upload", content=b"x" * 4096)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert "x-request-id" in response.headers


async def test_chunked_oversized_body_is_413_before_it_is_all_read(
    small_body_client: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # would be 1 MB if the server kept reading
            sent += 1
            yield b"y" * 1000

    response = await small_body_client.post("/probe/upload", content=chunks())
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert sent < 10, "the server kept reading after the limit"


async def test_cors_allows_configured_origins_only(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url, cors={"origins": ["https://app.example"], "allow_credentials": True}
    )
    app: FastAPI = create_app(settings, models=ModelRegistry(chat={}, embeddings={}))
    async with LifespanManager(app), client_for(app) as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = await client.options(
            "/healthz", headers={"Origin": "https://app.example", **preflight}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert allowed.headers["access-control-allow-credentials"] == "true"
        other = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        simple = await client.get("/healthz", headers={"Origin": "https://app.example"})
        assert "X-Request-ID" in simple.headers["access-control-expose-headers"]
