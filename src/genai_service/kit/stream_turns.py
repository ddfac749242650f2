"""The order in which open event streams write their later pieces: the oldest stream first.

Every stream's later pieces compete for the event loop with each other and with the requests
not yet answered. Taken as they come, every open stream with a piece ready writes it in each
turn of the loop, so a new request waits, at each of its steps, behind a piece of every open
stream; and streams that began together advance together and end together, so their clients'
next requests arrive together and wait behind each other as well. Here the oldest open stream
writes whenever it has a piece ready; the others wait for a turn, given to one of them at a
time, oldest first, once per turn of the event loop. The work of requests not yet answered (up
to a stream's first piece) never waits: it runs in every turn. A stream's work is the same
either way; the time to a first piece is what changes (`bench.web_tier`, docs/benchmarks.md).

One order per event loop: every stream of the process takes its turns from it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import weakref
from collections.abc import Awaitable, Callable, Iterator


class StreamTurns:
    """The open streams of one event loop, in the order they were opened."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ages = itertools.count()
        self._open: dict[int, None] = {}  # in the order opened: the first is the oldest
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []  # a heap: the oldest first
        self._giving = False

    @contextlib.contextmanager
    def opened(self) -> Iterator[Callable[[], Awaitable[None]]]:
        """A stream, open for as long as the context; it yields the stream's `wait_turn`, which
        returns when the stream may write its next piece: at once if it is the oldest open, else
        at its turn. Its turns come before those of the streams opened after it."""
        age = next(self._ages)
        self._open[age] = None
        try:
            yield functools.partial(self._wait_turn, age)
        finally:
            del self._open[age]

    async def _wait_turn(self, age: int) -> None:
        if next(iter(self._open)) == age:
            return
        future = self._loop.create_future()
        heapq.heappush(self._waiting, (age, future))
        if not self._giving:
            self._giving = True
            self._loop.call_soon(self._give)
        await future  # a stream cancelled while it waits leaves a cancelled future: skipped

    def _give(self) -> None:
        """Start the oldest waiting stream, and come back in the next turn of the loop for the
        one after it."""
        while self._waiting:
            _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                break
        if self._waiting:
            self._loop.call_soon(self._give)
        else:
            self._giving = False


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamTurns] = (
    weakref.WeakKeyDictionary()
)


def stream_turns() -> StreamTurns:
    """The order of the running event loop's streams."""
    loop = asyncio.get_running_loop()
    turns = _TURNS.get(loop)
    if turns is None:
        turns = _TURNS[loop] = StreamTurns(loop)
    return turns
