"""The deployment of the multi-process tests: a model host, PostgreSQL, Redis and two
`genai-service serve` processes, A and B, started once per module."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.conversations.support import serve, started_app
from tests.live_server import LiveServer
from tests.multiprocess.harness import (
    drop_database,
    new_database,
    shared_env,
    started,
    stopped,
    web_process,
)


@dataclass
class ModelHost:
    app: FastAPI
    url: str


@dataclass
class Deployment:
    data_dir: Path
    database_url: str
    env: dict[str, str]
    model_host: ModelHost
    a: LiveServer
    b: LiveServer


@pytest.fixture(scope="module")
async def model_host(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ModelHost]:
    data = Path(tmp_path_factory.mktemp("model-host"))
    settings = make_settings(data, f"sqlite+aiosqlite:///{data / 'host.db'}")
    async for app in started_app(settings):
        async for url in serve(app):
            yield ModelHost(app, url)


@pytest.fixture(scope="module")
async def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin_url: str,
    redis_url: str,
    model_host: ModelHost,
) -> AsyncIterator[Deployment]:
    data_dir = Path(tmp_path_factory.mktemp("deployment")) / "data"
    database_url = await new_database(postgres_admin_url)
    prefix = f"multi-{uuid.uuid4().hex[:8]}:"
    env = shared_env(data_dir, database_url, redis_url, prefix, model_host.url)
    a, b = web_process(data_dir, env, "a"), web_process(data_dir, env, "b")
    try:
        await started(a, b)
        yield Deployment(data_dir, database_url, env, model_host, a, b)
    finally:
        await stopped(a, b)
        await drop_database(postgres_admin_url, database_url)
