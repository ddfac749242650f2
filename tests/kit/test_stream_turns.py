"""The order of open streams' later pieces: the oldest open stream writes at once, the others
take turns, one per turn of the event loop, oldest first but none passed over more than
`PATIENCE` turns; a closed stream or a cancelled wait holds no one up; each event loop has its
own order, gone with it; and on a real server, while streams all have pieces ready, the oldest
writes one in every turn of the loop, the younger ones share one turn, and each of them
advances."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from fastapi import FastAPI

from genai_service.kit.event_streams import EventStreamResponse
from genai_service.kit.stream_turns import PATIENCE, StreamTurns, stream_turns
from tests.conversations.support import serve


class LoopTurns:
    """Counts the turns of the event loop while it runs."""

    def __init__(self) -> None:
        self.count = 0

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.count += 1

    @contextlib.asynccontextmanager
    async def counting(self) -> AsyncIterator[LoopTurns]:
        task = asyncio.create_task(self._run())
        await asyncio.sleep(0)  # the counter's first turn, before anything is measured
        try:
            yield self
        finally:
            task.cancel()


async def test_the_oldest_open_stream_writes_at_once_and_the_others_take_turns_oldest_first() -> (
    None
):
    turns = StreamTurns()
    released: list[tuple[str, int]] = []
    async with LoopTurns().counting() as loop_turns:
        with (
            turns.opened() as oldest,
            turns.opened() as second,
            turns.opened() as third,
            turns.opened() as fourth,
        ):
            before = loop_turns.count
            await oldest()
            assert loop_turns.count == before  # not a single turn of the loop waited

            async def wait(name: str, wait_turn: Callable[[], Awaitable[None]]) -> None:
                await wait_turn()
                released.append((name, loop_turns.count))

            waiting = [
                asyncio.create_task(wait("fourth", fourth)),
                asyncio.create_task(wait("second", second)),
                asyncio.create_task(wait("third", third)),
            ]
            await asyncio.gather(*waiting)
    assert [name for name, _ in released] == ["second", "third", "fourth"]
    at = [turn for _, turn in released]
    assert at[0] < at[1] < at[2]  # one a turn of the loop


async def test_a_stream_writes_at_once_when_the_older_ones_have_closed() -> None:
    turns = StreamTurns()
    async with LoopTurns().counting() as loop_turns:
        with contextlib.ExitStack() as first_open:
            first_open.enter_context(turns.opened())
            with turns.opened() as second:
                waiting = asyncio.create_task(second())
                await asyncio.sleep(0)
                assert not waiting.done()  # the first is open: the second waits for its turn
                await waiting
                first_open.close()
                before = loop_turns.count
                await second()
                assert loop_turns.count == before


async def test_a_wait_cancelled_holds_no_one_up() -> None:
    turns = StreamTurns()
    with turns.opened(), turns.opened() as second, turns.opened() as third:
        cancelled = asyncio.create_task(second())
        waiting = asyncio.create_task(third())
        await asyncio.sleep(0)  # both wait
        cancelled.cancel()
        await asyncio.wait_for(waiting, timeout=5)
    assert cancelled.cancelled()


def test_each_event_loop_has_its_own_order_gone_with_it() -> None:
    async def both() -> tuple[StreamTurns, StreamTurns]:
        return stream_turns(), stream_turns()

    first, again = asyncio.run(both())
    other, _ = asyncio.run(both())
    assert first is again
    assert other is not first
    gone = weakref.ref(first)
    del first, again, other
    gc.collect()
    assert gone() is None


PIECES = 30


async def read_events(http: httpx.AsyncClient, name: str, opened: asyncio.Event) -> list[str]:
    """The lines of stream `name`; `opened` is set at its first."""
    lines: list[str] = []
    async with http.stream("GET", f"/events/{name}") as response:
        async for line in response.aiter_lines():
            if line:
                lines.append(line)
                opened.set()
    return lines


async def test_on_a_server_the_oldest_stream_writes_in_every_turn_and_the_younger_share_one() -> (
    None
):
    """Three streams with a later piece ready in every turn of the loop; every client gets its
    whole stream."""
    app = FastAPI()
    go = asyncio.Event()
    written: list[str] = []

    async def pieces(name: str) -> AsyncIterator[bytes]:
        yield b"data: %s 0\n\n" % name.encode()
        await go.wait()
        for number in range(1, PIECES):
            await asyncio.sleep(0)  # a piece is ready in every turn of the loop
            written.append(name)
            yield b"data: %s %d\n\n" % (name.encode(), number)

    @app.get("/events/{name}")
    async def events(name: str) -> EventStreamResponse:
        return EventStreamResponse(pieces(name))

    async for url in serve(app):
        async with httpx.AsyncClient(base_url=url) as http:
            readers = []
            for name in ("oldest", "second", "youngest"):
                opened = asyncio.Event()
                readers.append(asyncio.create_task(read_events(http, name, opened)))
                await opened.wait()  # open in this order
            go.set()
            received = await asyncio.gather(*readers)
    for name, lines in zip(("oldest", "second", "youngest"), received, strict=True):
        assert lines == [f"data: {name} {number}" for number in range(PIECES)]
    # While the oldest was open, it wrote a piece in each turn of the loop and the younger two
    # shared one turn between them (each would have had one of its own without the turns).
    while_the_oldest_was_open = written[: len(written) - written[::-1].index("oldest")]
    younger = len(while_the_oldest_was_open) - PIECES + 1
    assert 0 < younger < PIECES - 1


async def test_on_a_server_younger_streams_with_pieces_always_ready_each_advance() -> None:
    """Pieces ready the moment they are asked for, while the oldest stream waits for its model:
    the oldest of the younger ones has most turns, and none is held up until another ends."""
    app = FastAPI()
    go = asyncio.Event()
    oldest_may_end = asyncio.Event()
    written: list[str] = []

    async def pieces(name: str) -> AsyncIterator[bytes]:
        yield b"data: %s 0\n\n" % name.encode()
        if name == "oldest":
            await oldest_may_end.wait()
            return
        await go.wait()
        for number in range(1, PIECES):
            written.append(name)
            yield b"data: %s %d\n\n" % (name.encode(), number)

    @app.get("/events/{name}")
    async def events(name: str) -> EventStreamResponse:
        return EventStreamResponse(pieces(name))

    younger = ("second", "third", "youngest")
    async for url in serve(app):
        async with httpx.AsyncClient(base_url=url) as http:
            readers = []
            for name in ("oldest", *younger):
                opened = asyncio.Event()
                readers.append(asyncio.create_task(read_events(http, name, opened)))
                await opened.wait()  # open in this order
            go.set()
            received = await asyncio.gather(*readers[1:])
            oldest_may_end.set()
            await readers[0]
    for name, lines in zip(younger, received, strict=True):
        assert lines == [f"data: {name} {number}" for number in range(PIECES)]
    # Each one's first later piece was asked for before `go`. Then the oldest of them has the
    # turns, but none waits more than PATIENCE turns given to the others.
    assert written.index("youngest", 3) < PATIENCE + 3 + len(younger)
    for name in younger:
        at = [index for index, one in enumerate(written) if one == name]
        assert max(b - a for a, b in itertools.pairwise(at)) <= PATIENCE + len(younger)
    ends = [max(index for index, one in enumerate(written) if one == name) for name in younger]
    assert ends == sorted(ends)  # the oldest of them ended first
