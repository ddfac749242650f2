"""Background loops: run from `start` to `stop`, and stopped between two steps, never inside one.

On Python 3.11 cancellation cannot stop a loop that talks to a database or to Redis safely:
- it can be lost. `asyncio.wait_for` returns the result of an operation that finished just as
  its task was cancelled, and the task runs on as if nothing happened (fixed in 3.12). redis-py
  wraps every command in `wait_for` when a socket timeout is set, and a loop of SQLAlchemy
  sessions on aiosqlite lost some here too (6 in 40);
- a cancellation that lands (once, or again until the task ends) cuts short a session's
  rollback and close, so that a SQLite connection is left holding the database's write lock
  and every other writer waits out its busy timeout.
So a loop checks `stopping` between its steps and waits with `pause`, which `stop` ends at once;
`stop` lets the step in progress finish. Only a loop still running `STOP_GRACE_SECONDS` later
(a step that hangs) is cancelled, again until it ends, and whatever it must finish when
cancelled is shielded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from loguru import logger

T = TypeVar("T")

RECANCEL_SECONDS = 0.02
"""How long a cancelled task may run on before it is cancelled again."""
STOP_GRACE_SECONDS = 10.0
"""How long `BackgroundLoop.stop` waits for the step in progress (a database call that waits
out a busy lock, a Redis command that waits out its socket timeout) before cancelling it."""


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it ended, cancelling it again while it runs on.

    A repeated cancellation also cuts short what the task does when cancelled, so whatever it
    must finish then is shielded. A task that failed instead is logged, not raised.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.opt(exception=error).error("background task {} had failed", task.get_name())


async def uninterrupted(work: Coroutine[Any, Any, T]) -> T:
    """`work`'s result; if the caller is cancelled meanwhile, `work` still runs to its end, and
    the cancellation is raised then.

    For a database transaction in work that is stopped by cancelling it (an ingestion job): a
    transaction cut short leaves its SQLite connection holding the write lock, and the next
    writer (the job's own giving back) waits out the busy timeout.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # the cancellation is what the caller gets
        raise


class BackgroundLoop:
    """A coroutine that runs until it is stopped (a periodic loop), as a task of its own from
    `start` to `stop`. The coroutine loops `while not loop.stopping` and waits with
    `loop.pause`."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]], *, name: str) -> None:
        self._run = run
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def pause(self, seconds: float, *, wake: asyncio.Event | None = None) -> None:
        """Wait `seconds`, or less: until `stop` is called, or `wake` is set."""
        events = [self._stopping] if wake is None else [self._stopping, wake]
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def stop(self) -> None:
        """Let the step in progress finish and end the loop; cancel it only if it hangs."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
        if not task.done():
            logger.warning("background task {} did not stop in time; cancelling it", self._name)
        await cancel_and_wait(task)
