"""The order in which open event streams write their later pieces: the oldest stream first.

Every stream's later pieces compete for the event loop with each other and with the requests
not yet answered. Taken as they come, every open stream with a piece ready writes it in each
turn of the loop, so a new request waits, at each of its steps, behind a piece of every open
stream; and streams that began together advance together and end together, so their clients'
next requests arrive together and wait behind each other as well. Here the oldest open stream
writes whenever it has a piece ready; the others wait for a turn, given to one of them per turn
of the event loop: to the oldest waiting, unless one has seen `PATIENCE` turns go to others
while it waited, which then has the next (so none is held up until the older ones end). The
work of requests not yet answered (up to a stream's first piece) never waits: it runs in every
turn. A stream's work is the same either way; the time to a first piece is what changes
(`bench.web_tier`, docs/benchmarks.md).

One order per event loop: every stream of the process takes its turns from it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import heapq
import itertools
import weakref
from collections.abc import Awaitable, Callable, Iterator

PATIENCE = 16
"""How many turns may go to other streams while a stream waits: past that, it has the next.
Oldest first without it, a stream's pieces could wait for as long as an older stream has one
ready in every turn (a busy loop, a fast upstream); 16 kept the first pieces as early as
oldest first alone did (docs/benchmarks.md)."""


@dataclasses.dataclass(slots=True)
class _Waiter:
    future: asyncio.Future[None]
    asked_at: int  # the turns given before it asked


class StreamTurns:
    """The open streams of one event loop, in the order they were opened, and those waiting for
    a turn."""

    def __init__(self) -> None:
        self._ages = itertools.count()
        self._open: dict[int, None] = {}  # in the order opened: the first is the oldest
        self._by_age: list[tuple[int, int, _Waiter]] = []  # a heap: the oldest stream first
        self._asked = itertools.count()  # ties: a stream's earlier wait, already over
        self._by_asking: collections.deque[_Waiter] = collections.deque()
        self._given = 0
        self._giving = False

    @contextlib.contextmanager
    def opened(self) -> Iterator[Callable[[], Awaitable[None]]]:
        """A stream, open for as long as the context; it yields the stream's `wait_turn`, which
        returns when the stream may write its next piece: at once while it is the oldest open,
        else at its turn."""
        age = next(self._ages)
        self._open[age] = None
        try:
            yield functools.partial(self._wait_turn, age)
        finally:
            del self._open[age]

    async def _wait_turn(self, age: int) -> None:
        if next(iter(self._open)) == age:
            return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), self._given)
        heapq.heappush(self._by_age, (age, next(self._asked), waiter))
        self._by_asking.append(waiter)
        if not self._giving:
            self._giving = True
            loop.call_soon(self._give)
        await waiter.future  # a stream cancelled while it waits leaves a cancelled future

    def _give(self) -> None:
        """Start the next waiting stream, and come back in the next turn of the loop for the
        one after it."""
        waiter = self._next()
        if waiter is not None:
            waiter.future.set_result(None)
            self._given += 1
        if self._by_age:
            asyncio.get_running_loop().call_soon(self._give)
        else:
            self._by_asking.clear()  # only waits already over are left
            self._giving = False

    def _next(self) -> _Waiter | None:
        """The stream that has waited past `PATIENCE` turns, if one has, else the oldest."""
        asking = self._by_asking
        while asking and asking[0].future.done():
            asking.popleft()
        if asking and self._given - asking[0].asked_at >= PATIENCE:
            return asking.popleft()
        while self._by_age:
            _, _, waiter = heapq.heappop(self._by_age)
            if not waiter.future.done():
                return waiter
        return None


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamTurns] = (
    weakref.WeakKeyDictionary()
)


def stream_turns() -> StreamTurns:
    """The order of the running event loop's streams (gone with the loop)."""
    loop = asyncio.get_running_loop()
    turns = _TURNS.get(loop)
    if turns is None:
        turns = _TURNS[loop] = StreamTurns()
    return turns
