from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from genai_service.settings import RedisSettings, Settings
from tests.conftest import make_settings
from tests.conversations.support import serve, started_app


@pytest.fixture
def settings(tmp_path: Path, database_url: str, shared_state: RedisSettings) -> Settings:
    """Each test here runs with the generations' events in the process and on Redis."""
    return make_settings(tmp_path, database_url, redis=shared_state)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async for application in started_app(settings):
        yield application


@pytest.fixture
async def server_url(app: FastAPI) -> AsyncIterator[str]:
    async for url in serve(app):
        yield url
