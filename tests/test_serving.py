"""The app behind a real uvicorn, as `genai-service serve` runs it: what the server answers."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import jsonschema
import pytest
from fastapi import APIRouter, FastAPI
from loguru import logger

from genai_service.app import create_app
from genai_service.serving import ProblemH11Protocol, ProblemHttpToolsProtocol
from tests.conftest import make_fake_models, make_settings
from tests.live_server import ThreadedServer

if TYPE_CHECKING:
    from loguru import Message

router = APIRouter(prefix="/probe")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("the probe failed on purpose")


@pytest.fixture(params=[ProblemHttpToolsProtocol, ProblemH11Protocol], ids=["httptools", "h11"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ThreadedServer]:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'serving.db'}")
    app: FastAPI = create_app(settings, models=make_fake_models())
    app.include_router(router)
    with ThreadedServer(app, http=request.param) as running:
        yield running


@pytest.fixture
def log_records() -> Iterator[list[dict[str, object]]]:
    records: list[dict[str, object]] = []

    def keep(message: Message) -> None:
        record = message.record
        records.append(
            {**record["extra"], "message": record["message"], "exc": record["exception"]}
        )

    sink = logger.add(keep, level="DEBUG")
    try:
        yield records
    finally:
        logger.remove(sink)


class RawConnection:
    """One TCP connection, to see exactly what the server sends and whether it keeps it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionError:
            return True


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /api/users/me HTTP/1.1\r\nHost: localhost\r\nContent-Length: ~koA!=T\r\n\r\n",
    ],
    ids=["request-line", "header", "nul-in-target", "content-length"],
)
def test_a_malformed_request_gets_a_problem(server: ThreadedServer, request_bytes: bytes) -> None:
    connection = RawConnection(server.port)
    try:
        connection.send(request_bytes)
        status, headers, body = connection.response()
    finally:
        connection.close()
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 400
    assert problem["type"] == "urn:genai-service:problem:malformed-request"
    assert problem["request_id"] == headers["x-request-id"]
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    schema = {**document["components"]["schemas"]["Problem"], "components": document["components"]}
    jsonschema.validate(problem, schema)  # the problem every operation documents


def test_a_500_keeps_the_connection_and_logs_one_traceback_with_its_request_id(
    server: ThreadedServer, log_records: list[dict[str, object]]
) -> None:
    connection = RawConnection(server.port)
    try:
        connection.send(get("/probe/boom"))
        status, headers, body = connection.response()
        assert status == 500
        assert headers["content-type"] == "application/problem+json"
        assert b"on purpose" not in body
        connection.send(get("/healthz"))  # the same connection
        assert connection.response()[0] == 200
    finally:
        connection.close()
    tracebacks = [record for record in log_records if record["exc"] is not None]
    assert len(tracebacks) == 1
    assert tracebacks[0]["request_id"] == headers["x-request-id"]
    assert "/probe/boom" in str(tracebacks[0]["message"])


def test_after_a_problem_for_a_malformed_request_the_server_closes(server: ThreadedServer) -> None:
    connection = RawConnection(server.port)
    try:
        connection.send(b"GARBAGE\r\n\r\n")
        assert connection.response()[0] == 400
        assert connection.closed_by_server()
    finally:
        connection.close()
