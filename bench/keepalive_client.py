"""A small HTTP/1.1 client for load generation: a pool of keep-alive connections, JSON bodies.

The benchmarks measure the server, so the client should cost as little CPU as possible on the
same cores: no connection management beyond a fixed pool, no header normalisation, no
redirects, one `Content-Length` body per response. It speaks just enough HTTP/1.1 for
genai-service's JSON endpoints, and checks every status code.
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


class HttpStatusError(RuntimeError):
    pass


class ConnectionClosed(ConnectionError):
    """The server closed an idle keep-alive connection; the request can be sent again."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post_json(self, host: str, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionClosed
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class KeepAliveClient:
    """Up to `connections` keep-alive connections to one server; requests wait for a free one."""

    def __init__(self, base_url: str, connections: int) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._host_header = parts.netloc
        self._connections = connections
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        self._all: list[_Connection] = []

    async def __aenter__(self) -> KeepAliveClient:
        for _ in range(self._connections):
            self._idle.put_nowait(await self._connect())
        return self

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        connection = _Connection(reader, writer)
        self._all.append(connection)
        return connection

    async def _reconnect(self, closed: _Connection) -> _Connection:
        closed.close()
        self._all.remove(closed)
        return await self._connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for connection in self._all:
            connection.close()

    async def post_json(self, path: str, payload: object) -> Any:
        """POST `payload` as JSON; the decoded JSON reply. Anything but 200 raises."""
        data = json.dumps(payload).encode()
        connection = await self._idle.get()
        try:
            try:
                status, body = await connection.post_json(self._host_header, path, data)
            except ConnectionClosed:
                connection = await self._reconnect(connection)
                status, body = await connection.post_json(self._host_header, path, data)
        finally:
            self._idle.put_nowait(connection)
        if status != 200:
            raise HttpStatusError(f"POST {path}: {status} {body[:200]!r}")
        return json.loads(body)
