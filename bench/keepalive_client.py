"""A small HTTP/1.1 client for load generation: a pool of keep-alive connections, JSON bodies.

The benchmarks measure the server, so the client should cost as little CPU as possible on the
same cores: no connection management beyond a fixed pool, no header normalisation, no
redirects, one `Content-Length` body per response. It speaks just enough HTTP/1.1 for
genai-service's JSON endpoints and its streams (chunked bodies), and checks every status code.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


class HttpStatusError(RuntimeError):
    pass


class ConnectionClosed(ConnectionError):
    """The server closed an idle keep-alive connection; the request can be sent again."""


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes
    first_seen_s: float | None
    """Seconds from sending the request to the first body piece holding the awaited bytes."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, head: bytes, body: bytes, until: bytes | None) -> _Response:
        """Send one request; read its reply. `until`: note when the body first holds it."""
        started = time.perf_counter()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionClosed
        status = int(status_line.split(b" ", 2)[1])
        length, chunked = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if not chunked:
            content = await self.reader.readexactly(length)
            seen = until is None or until in content
            return _Response(status, content, time.perf_counter() - started if seen else None)
        pieces: list[bytes] = []
        first_seen: float | None = None
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            pieces.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
            if first_seen is None and until is not None and until in pieces[-1]:
                first_seen = time.perf_counter() - started
        await self.reader.readline()  # the empty trailer
        return _Response(status, b"".join(pieces), first_seen)

    def close(self) -> None:
        self.writer.close()


class KeepAliveClient:
    """Up to `connections` keep-alive connections to one server; requests wait for a free one."""

    def __init__(
        self, base_url: str, connections: int, headers: Mapping[str, str] | None = None
    ) -> None:
        parts = urlsplit(base_url)
        self._headers = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
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
        return json.loads((await self._post(path, payload, until=None)).body)

    async def post_stream(self, path: str, payload: object, until: bytes) -> float:
        """POST `payload` as JSON and read the streamed reply to its end; the seconds until its
        body first held `until`. Anything but 200, or a reply without it, raises."""
        response = await self._post(path, payload, until=until)
        if response.first_seen_s is None:
            raise HttpStatusError(f"POST {path}: no {until!r} in {response.body[:200]!r}")
        return response.first_seen_s

    async def _post(self, path: str, payload: object, until: bytes | None) -> _Response:
        body = json.dumps(payload).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host_header}\r\n{self._headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        connection = await self._idle.get()
        try:
            try:
                response = await connection.exchange(head, body, until)
            except ConnectionClosed:
                connection = await self._reconnect(connection)
                response = await connection.exchange(head, body, until)
        finally:
            self._idle.put_nowait(connection)
        if response.status != 200:
            raise HttpStatusError(f"POST {path}: {response.status} {response.body[:200]!r}")
        return response
