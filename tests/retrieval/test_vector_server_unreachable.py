"""The Qdrant server path (`GENAI_VECTORS__URL`) when the server does not serve.

No Qdrant server can run on the machines this suite runs on (it is packaged neither on PyPI nor
in Debian, and container images cannot be fetched): the server path shares every line of
`QdrantVectorStore` with the embedded mode the other retrieval tests cover, and these tests
cover what only a server has, its outage, against loopback sockets: a port where nothing
listens, one that accepts connections and never answers, and one that refuses the API key.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.retrieval.vector_store import QdrantVectorStore
from genai_service.runtime import runtime_of
from genai_service.settings import VectorSettings
from tests.conftest import client_for, make_fake_models, make_settings
from tests.http_stub import QuietHandler, serving

CLIENT_TIMEOUT_S = 1.0


@pytest.fixture
def refusing_port() -> Iterator[str]:
    """Bound but not listening: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def silent_port() -> Iterator[str]:
    """Listening, so connections complete, but nothing ever reads or answers them."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


class _RejectsKey(QuietHandler):
    """What a Qdrant server with another API key answers to every request."""

    def _forbidden(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b'{"status":{"error":"Invalid api-key"},"time":0.0}'
        self.send_response(403)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # the names http.server dispatches to
    do_GET = do_POST = do_PUT = do_DELETE = _forbidden  # noqa: N815


@pytest.fixture
def key_rejecting_server() -> Iterator[str]:
    with serving(_RejectsKey) as url:
        yield url


async def _started(
    tmp_path: Path, database_url: str, url: str, api_key: str | None = None
) -> AsyncIterator[FastAPI]:
    vectors = VectorSettings(url=url, api_key=api_key, timeout=CLIENT_TIMEOUT_S)
    application = create_app(
        make_settings(tmp_path, database_url, vectors=vectors), models=make_fake_models()
    )
    async with LifespanManager(application, startup_timeout=60):
        await runtime_of(application).models.start()
        yield application


@pytest.fixture
async def app(tmp_path: Path, database_url: str, refusing_port: str) -> AsyncIterator[FastAPI]:
    async for application in _started(tmp_path, database_url, refusing_port):
        yield application


async def test_the_url_selects_the_server_client(app: FastAPI) -> None:
    store = runtime_of(app).vector_store
    assert isinstance(store, QdrantVectorStore)
    assert store.is_server


async def _assert_unavailable(app: FastAPI, detail: str) -> None:
    async with client_for(app) as http:
        ready = await http.get("/readyz")
        search = await http.post("/api/search", json={"query": "anything"})
    assert ready.status_code == 503
    assert ready.json()["checks"]["vector_store"] is False
    assert ready.json()["checks"]["database"] is True
    assert search.status_code == 503, search.text
    assert search.headers["content-type"] == "application/problem+json"
    assert search.json()["type"].endswith(":vector-store-unavailable")
    assert detail in search.json()["detail"]
    assert "Traceback" not in search.text


async def test_an_unreachable_server_is_not_ready_and_search_is_a_503(app: FastAPI) -> None:
    await _assert_unavailable(app, "cannot be reached")


async def test_a_server_that_never_answers_is_a_503_within_the_timeout(
    tmp_path: Path, database_url: str, silent_port: str
) -> None:
    async for application in _started(tmp_path, database_url, silent_port):
        await _assert_unavailable(application, "cannot be reached")


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
async def test_a_server_that_refuses_the_key_is_a_503_naming_the_key(
    tmp_path: Path, database_url: str, key_rejecting_server: str
) -> None:
    started = _started(tmp_path, database_url, key_rejecting_server, api_key="not-its-key")
    async for application in started:
        await _assert_unavailable(application, "refused the service's API key")
