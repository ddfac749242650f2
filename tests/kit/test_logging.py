"""What reaches the log: the level, and the libraries kept quiet."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import pytest
from loguru import logger

from genai_service.kit.logging import configure_logging


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/upstream"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


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
