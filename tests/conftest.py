"""Fixtures shared by the whole suite: real SQLite and PostgreSQL databases and the ASGI app."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from loguru import logger

from genai_service.app import create_app
from genai_service.inference.registry import ModelRegistry
from genai_service.runtime import runtime_of
from genai_service.settings import RedisSettings, Settings
from tests.fakes import FakeEmbeddingModel, ScriptedChatModel
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer

# The suite never reads a genai-service.toml lying in the working directory: an empty file instead.
os.environ["GENAI_CONFIG"] = os.devnull

FAKE_CHAT_MODEL = "fake-chat"
FAKE_EMBEDDING_MODEL = "fake-embedding"


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    external = os.environ.get("GENAI_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    server = PostgresServer()
    server.start()
    try:
        yield server.admin_url
    finally:
        server.stop()


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database per test, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server of the suite's own (never the machine's service)."""
    external = os.environ.get("GENAI_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.remove()


@pytest.fixture(params=["in-process", "redis"])
def shared_state(request: pytest.FixtureRequest) -> RedisSettings:
    """Where cross-request state lives: in the process, or in Redis (under a prefix of the
    test's own, so tests never see each other's keys)."""
    if request.param == "in-process":
        return RedisSettings()
    url: str = request.getfixturevalue("redis_url")
    return RedisSettings(url=url, key_prefix=f"test-{uuid.uuid4().hex[:12]}:")


PRODUCTION_SECRET = "tyFyVsf6oZ0Sq1f8q4ENIOgklfgZDr-liSlnA5Sr2KA"
"""A secret key production accepts (made by `secrets.token_urlsafe(32)`)."""


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for tests: nothing read from the environment or a .env file."""
    values: dict[str, Any] = {"data_dir": tmp_path / "data", "database_url": database_url}
    values.update(overrides)
    return Settings(_env_file=None, **values)


def second_process(settings: Settings) -> Settings:
    """Settings for a second app beside the first, on the same database and secret.

    An embedded Qdrant folder belongs to one process at a time, so the second app gets a folder
    of its own and leaves ingestion to the first.
    """
    vectors = settings.vectors.model_copy(
        update={"local_path": settings.data_dir / f"qdrant-{uuid.uuid4().hex}"}
    )
    documents = settings.documents.model_copy(update={"run_ingestion": False})
    return settings.model_copy(update={"vectors": vectors, "documents": documents})


def make_fake_models() -> ModelRegistry:
    return ModelRegistry(
        chat={FAKE_CHAT_MODEL: ScriptedChatModel()},
        embeddings={FAKE_EMBEDDING_MODEL: FakeEmbeddingModel()},
        default_chat=FAKE_CHAT_MODEL,
        default_embedding=FAKE_EMBEDDING_MODEL,
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, models=make_fake_models())
    async with LifespanManager(application, startup_timeout=60):
        await runtime_of(application).models.start()
        yield application


def client_for(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


@pytest.fixture
def captured_logs(app: FastAPI) -> Iterator[list[str]]:
    """Every log line written while the test runs (after the app configured logging)."""
    lines: list[str] = []
    sink_id = logger.add(
        lambda message: lines.append(str(message)),
        level="DEBUG",
        format="{extra[request_id]} {name} {message}",
        backtrace=False,
    )
    try:
        yield lines
    finally:
        logger.remove(sink_id)


# Accounts, tokens and API keys for tests (fixtures `alice`, `bob`, `admin`): tests/identity.py.
pytest_plugins = ["tests.identity"]
