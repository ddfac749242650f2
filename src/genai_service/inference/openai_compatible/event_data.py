"""The data of the server-sent events of a remote server's streamed reply."""

from __future__ import annotations

from collections.abc import AsyncIterator

STREAM_END = b"[DONE]"
MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest line of a stream read: a server that sends more without a line break is broken."""


class MalformedStream(Exception):
    """The stream is not one of server-sent events."""


async def _lines(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The lines of a body that comes in pieces, without their line ends (LF or CRLF)."""
    pending = b""
    async for piece in pieces:
        lines = (pending + piece).split(b"\n")
        pending = lines.pop()
        if len(pending) > MAX_LINE_BYTES:
            raise MalformedStream(f"a line longer than {MAX_LINE_BYTES} bytes")
        for line in lines:
            yield line.removesuffix(b"\r")
    if pending:
        yield pending.removesuffix(b"\r")


async def event_data(pieces: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes, bytes]]:
    """Each event's type (`b""` when it has none) and data, until `data: [DONE]` or the body's
    end. Comment lines (heartbeats) and fields other than `event` and `data` are skipped; an
    event without data is no event. A last event without its blank line still counts: some
    servers end their stream so."""
    kind, data = b"", list[bytes]()
    async for line in _lines(pieces):
        if not line:
            if data:
                joined = b"\n".join(data)
                if joined == STREAM_END:
                    return
                yield kind, joined
            kind, data = b"", []
            continue
        field, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if field == b"data":
            data.append(value)
        elif field == b"event":
            kind = value
    if data and (joined := b"\n".join(data)) != STREAM_END:
        yield kind, joined
