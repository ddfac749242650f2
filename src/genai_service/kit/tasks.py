"""Background loops: run from `start` to `stop`, and stopped for certain.

On Python 3.11 a cancellation can be lost: `asyncio.wait_for` returns the result of an operation
that finished just as its task was cancelled, and the task runs on as if nothing happened (fixed
in 3.12). redis-py wraps every command it sends in `wait_for` when a socket timeout is set, so a
task cancelled while it talks to Redis loses the cancellation more often than not. Code of our own
waits with `asyncio.timeout`, which keeps it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from loguru import logger

RECANCEL_SECONDS = 0.02
"""How long a cancelled task may run on before it is cancelled again."""


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it ended, cancelling it again while it runs on.

    For a periodic loop: a repeated cancellation would also cut short what the task does when
    cancelled, so whatever it must finish then is shielded. A task that failed instead is
    logged, not raised.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.opt(exception=error).error("background task {} had failed", task.get_name())


class BackgroundLoop:
    """A coroutine that runs until it is stopped (a periodic loop), as a task of its own from
    `start` to `stop`."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]], *, name: str) -> None:
        self._run = run
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
