from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from genai_service.settings import Settings
from tests.conversations.support import serve
from tests.guards.support import started_app


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async for application in started_app(settings):
        yield application


@pytest.fixture
async def server_url(app: FastAPI) -> AsyncIterator[str]:
    async for url in serve(app):
        yield url
