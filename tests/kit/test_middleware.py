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


async def test_a_refused_preflight_is_a_problem(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, cors={"origins": ["https://app.example"]})
    app: FastAPI = create_app(settings, models=ModelRegistry(chat={}, embeddings={}))
    async with LifespanManager(app), client_for(app) as client:
        refused = await client.options(
            "/healthz",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["type"].endswith(":cors-preflight-refused")
    assert body["detail"] == "The server's CORS policy does not allow this request's origin."
    assert body["request_id"] == refused.headers["x-request-id"]
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize("path", ["/api/conversations/", "/api/users/me/"])
async def test_the_slash_redirect_is_relative_whatever_the_host(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(
        path + "?limit=5", headers={"Host": "evil.example"}, follow_redirects=False
    )
    assert response.status_code == 307
    assert response.headers["location"] == path.rstrip("/") + "?limit=5"


async def test_a_path_without_a_route_either_way_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/no-such-thing/", follow_redirects=False)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@router.get("/client")
async def client_address(request: Request) -> dict[str, str | None]:
    return {
        "host": request.client.host if request.client else None,
        "scheme": request.url.scheme,
    }


@pytest.mark.parametrize(
    ("trusted", "peer", "seen"),
    [
        (None, "127.0.0.1", "203.0.113.7"),  # default: a proxy on the same host
        (None, "198.51.100.2", "198.51.100.2"),  # anyone else cannot claim an address
        ([], "127.0.0.1", "127.0.0.1"),  # trust no one
        (["10.0.0.0/8"], "10.1.2.3", "203.0.113.7"),
    ],
)
async def test_forwarded_addresses_are_believed_from_trusted_proxies_only(
    tmp_path: Path, database_url: str, trusted: list[str] | None, peer: str, seen: str
) -> None:
    http = {} if trusted is None else {"forwarded_allow_ips": trusted}
    settings = make_settings(tmp_path, database_url, http=http)
    app = create_app(settings, models=ModelRegistry(chat={}, embeddings={}))
    app.include_router(router)
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        response = await client.get(
            "/probe/client",
            headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
        )
    assert response.json() == {
        "host": seen,
        "scheme": "https" if seen == "203.0.113.7" else "http",
    }
