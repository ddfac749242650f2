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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


class HttpStatusError(RuntimeError):
    pass


class ConnectionClosed(ConnectionError):
    """The server closed an idle keep-alive connection (and reset it, if the request reached it
    after that) before answering: the request can be sent again."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    seen_s: list[float | None]
    """Per awaited byte string: seconds from sending the request to the first body piece that
    held it (`None`: never)."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, head: bytes, body: bytes, marks: Sequence[bytes]) -> Response:
        """Send one request; read its reply, noting when its body first holds each of `marks`."""
        started = time.perf_counter()
        self.writer.write(head + body)
        try:
            status_line = await self.reader.readline()
        except ConnectionResetError as exc:  # closed as idle while the request was on its way
            raise ConnectionClosed from exc
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
        seen: list[float | None] = [None] * len(marks)

        def note(piece: bytes) -> None:
            for index, mark in enumerate(marks):
                if seen[index] is None and mark in piece:
                    seen[index] = time.perf_counter() - started

        if not chunked:
            content = await self.reader.readexactly(length)
            note(content)
            return Response(status, content, seen)
        pieces: list[bytes] = []
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            pieces.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
            note(pieces[-1])
        await self.reader.readline()  # the empty trailer
        return Response(status, b"".join(pieces), seen)

    def close(self) -> None:
        self.writer.close()


class KeepAliveClient:
    """Up to `connections` keep-alive connections to one server; requests wait for a free one."""

    def __init__(
        self,
        base_url: str,
        connections: int,
        headers: Mapping[str, str] | None = None,
        *,
        probe: str | None = None,
    ) -> None:
        """`probe`: a path to GET on each connection as it opens, before the next one opens. The
        worker processes of a server sharing one listening socket then take the connections
        one by one as each is free, instead of the first to wake taking every connection
        waiting in the queue."""
        parts = urlsplit(base_url)
        self._headers = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._host_header = parts.netloc
        self._connections = connections
        self._probe = probe
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        self._all: list[_Connection] = []

    async def __aenter__(self) -> KeepAliveClient:
        for _ in range(self._connections):
            self._idle.put_nowait(await self._connect())
            if self._probe is not None:
                await self.request("GET", self._probe)
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
        """POST `payload` as JSON; the decoded JSON reply. Anything but a 2xx raises."""
        return json.loads((await self.request("POST", path, payload)).body)

    async def post_stream(self, path: str, payload: object, until: bytes) -> float:
        """POST `payload` as JSON and read the streamed reply to its end; the seconds until its
        body first held `until`. Anything but a 2xx, or a reply without it, raises."""
        seen, _ = await self.stream("POST", path, payload, marks=(until,))
        return seen[0]

    async def stream(
        self,
        method: str,
        path: str,
        payload: object = None,
        *,
        marks: Sequence[bytes],
        headers: Mapping[str, str] | None = None,
    ) -> tuple[list[float], bytes]:
        """Send a request (`payload`, if not `None`, as JSON) and read the reply to its end; the
        seconds until its body first held each of `marks`, and the body. Anything but a 2xx, or
        a reply missing one of `marks`, raises."""
        response = await self.request(method, path, payload, marks=marks, headers=headers)
        seen = [s for s in response.seen_s if s is not None]
        if len(seen) != len(marks):
            raise HttpStatusError(f"{method} {path}: not all of {marks} in {response.body[:300]!r}")
        return seen, response.body

    async def request(
        self,
        method: str,
        path: str,
        payload: object = None,
        *,
        marks: Sequence[bytes] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One request on a free connection. Anything but a 2xx raises."""
        body = b"" if payload is None else json.dumps(payload).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        content = "" if payload is None else "Content-Type: application/json\r\n"
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\n{self._headers}{extra}"
            f"{content}Content-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        connection = await self._idle.get()
        try:
            try:
                response = await connection.exchange(head, body, marks)
            except ConnectionClosed:
                connection = await self._reconnect(connection)
                response = await connection.exchange(head, body, marks)
        finally:
            self._idle.put_nowait(connection)
        if not 200 <= response.status < 300:
            raise HttpStatusError(f"{method} {path}: {response.status} {response.body[:200]!r}")
        return response
