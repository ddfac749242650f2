"""The order of open streams' later pieces: the oldest open stream writes at once, the others
take turns, one per turn of the event loop, oldest first; a closed stream or a cancelled wait
holds no one up; each event loop has its own order; and on a real server, while streams all
have pieces ready, the oldest writes one in every turn of the loop and the younger ones share
one turn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from fastapi import FastAPI

from genai_service.kit.event_streams import EventStreamResponse
from genai_service.kit.stream_turns import StreamTurns, stream_turns
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
    turns = StreamTurns(asyncio.get_running_loop())
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

            # Asked youngest first: the turns still go oldest first.
            waiting = [
                asyncio.create_task(wait("fourth", fourth)),
                asyncio.create_task(wait("third", third)),
                asyncio.create_task(wait("second", second)),
            ]
            await asyncio.gather(*waiting)
    assert [name for name, _ in released] == ["second", "third", "fourth"]
    at = [turn for _, turn in released]
    assert at[0] < at[1] < at[2]  # one a turn of the loop


async def test_a_stream_writes_at_once_when_the_older_ones_have_closed() -> None:
    turns = StreamTurns(asyncio.get_running_loop())
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
    turns = StreamTurns(asyncio.get_running_loop())
    with turns.opened(), turns.opened() as second, turns.opened() as third:
        cancelled = asyncio.create_task(second())
        waiting = asyncio.create_task(third())
        await asyncio.sleep(0)  # both wait
        cancelled.cancel()
        await asyncio.wait_for(waiting, timeout=5)
    assert cancelled.cancelled()


def test_each_event_loop_has_its_own_order() -> None:
    async def both() -> tuple[StreamTurns, StreamTurns]:
        return stream_turns(), stream_turns()

    first, again = asyncio.run(both())
    other, _ = asyncio.run(both())
    assert first is again
    assert other is not first


PIECES = 30


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

    async def read(http: httpx.AsyncClient, name: str, opened: asyncio.Event) -> list[str]:
        lines: list[str] = []
        async with http.stream("GET", f"/events/{name}") as response:
            async for line in response.aiter_lines():
                if line:
                    lines.append(line)
                    opened.set()
        return lines

    async for url in serve(app):
        async with httpx.AsyncClient(base_url=url) as http:
            readers = []
            for name in ("oldest", "second", "youngest"):
                opened = asyncio.Event()
                readers.append(asyncio.create_task(read(http, name, opened)))
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
