"""What reaches the log: the level, and the libraries kept quiet."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx2
import pytest
from loguru import logger

from genai_service.kit.logging import configure_logging
from tests.http_stub import QuietHandler, serving


class _Ok(QuietHandler):
    def _ok(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = _ok  # noqa: N815 - the name http.server dispatches to


@pytest.fixture
def server_url() -> Iterator[str]:
    with serving(_Ok) as url:
        yield f"{url}/upstream"


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    configure_logging(level="INFO", json_lines=False)  # to stderr again, as an app leaves it


async def _call(url: str) -> None:
    async with httpx2.AsyncClient() as client:
        assert (await client.get(url)).status_code == 200


async def test_calls_to_providers_are_not_logged_one_by_one_at_info(
    server_url: str, log: io.StringIO
) -> None:
    configure_logging(level="INFO", json_lines=False, stream=log)
    await _call(server_url)
    logger.info("after the call")
    assert "after the call" in log.getvalue()
    assert "/upstream" not in log.getvalue()


async def test_calls_to_providers_are_logged_at_debug(server_url: str, log: io.StringIO) -> None:
    configure_logging(level="DEBUG", json_lines=False, stream=log)
    await _call(server_url)
    assert "HTTP Request: GET " + server_url in log.getvalue()
