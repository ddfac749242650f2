from __future__ import annotations

from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from genai_service import __version__
from genai_service.app import create_app
from genai_service.inference.registry import ModelRegistry
from tests.conftest import client_for, make_settings
from tests.fakes import FakeEmbeddingModel, ScriptedChatModel


async def test_root_answers_healthy_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


async def test_root_sends_a_browser_to_the_chat_page_in_development(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui"
    page = await client.get("/ui")
    assert page.status_code == 200
    assert "<title>genai-service</title>" in page.text
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_production_hides_docs_and_names_the_service(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        env="production",
        secret_key="x" * 8 + "k3y-Of-Sufficient-Entropy-42!",
    )
    app = create_app(settings, models=ModelRegistry(chat={}, embeddings={}))
    async with LifespanManager(app), client_for(app) as client:
        root = await client.get("/", headers={"Accept": "text/html"})
        assert root.status_code == 200
        assert root.json() == {"status": "healthy", "name": "genai-service", "version": __version__}
        for path in ("/docs", "/redoc", "/openapi.json"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json"


async def test_production_docs_can_be_enabled(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        env="production",
        secret_key="Another-Random-Secret-Key-0123456789",
        docs_enabled=True,
    )
    app = create_app(settings, models=ModelRegistry(chat={}, embeddings={}))
    async with LifespanManager(app), client_for(app) as client:
        assert (await client.get("/openapi.json")).status_code == 200


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


async def test_readyz_when_database_and_models_are_ready(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] is True
    assert body["checks"]["model:fake-chat"] is True
    assert body["checks"]["vector_store"] is True


async def test_readyz_is_503_until_every_model_is_loaded(tmp_path: Path, database_url: str) -> None:
    slow = ScriptedChatModel()
    models = ModelRegistry(
        chat={"slow": slow},
        embeddings={"emb": FakeEmbeddingModel()},
        default_chat="slow",
        default_embedding="emb",
    )
    app = create_app(make_settings(tmp_path, database_url), models=models)
    async with LifespanManager(app), client_for(app) as client:
        await slow.close()  # a model that is not (or no longer) loaded
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert "model:slow" in body["detail"]
        assert body["checks"]["model:slow"] is False
        assert body["checks"]["database"] is True


async def test_readyz_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    closed_port = "postgresql+asyncpg://postgres@127.0.0.1:9/unreachable"
    settings = make_settings(tmp_path, closed_port, migrate_on_startup=False)
    app = create_app(settings, models=ModelRegistry(chat={}, embeddings={}))
    async with LifespanManager(app), client_for(app) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"database": False, "vector_store": True}
        assert (await client.get("/healthz")).status_code == 200
