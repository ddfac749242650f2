"""The events of a streamed reply, however its body is cut into pieces on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from genai_service.inference.openai_compatible import event_data as module
from genai_service.inference.openai_compatible.event_data import MalformedStream, event_data


async def _pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _events(body: bytes, size: int) -> list[tuple[bytes, bytes]]:
    return [event async for event in event_data(_pieces(body, size))]


BODY = (
    b": a heartbeat\r\n"
    b'data: {"a": 1}\r\n\r\n'
    b"event: error\n"
    b"id: 7\n"
    b"data: first line\n"
    b"data:second line\n\n"
    b"event: empty\n\n"
    b"data: [DONE]\n\n"
    b"data: after the end\n\n"
)


@pytest.mark.parametrize("size", [1, 2, 7, len(BODY)])
async def test_events_whatever_the_pieces(size: int) -> None:
    assert await _events(BODY, size) == [
        (b"", b'{"a": 1}'),
        (b"error", b"first line\nsecond line"),
    ]


async def test_a_last_event_without_its_blank_line_still_counts() -> None:
    assert await _events(b"data: 1\n\ndata: 2", 3) == [(b"", b"1"), (b"", b"2")]


async def test_a_line_without_end_longer_than_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "MAX_LINE_BYTES", 16)
    with pytest.raises(MalformedStream):
        await _events(b"data: " + b"x" * 64, 8)
