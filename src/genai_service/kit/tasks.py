"""Stopping a background loop for certain.

On Python 3.11 a cancellation can be lost: `asyncio.wait_for` returns the result of an operation
that finished just as its task was cancelled, and the task runs on as if nothing happened (fixed
in 3.12). redis-py wraps every command it sends in `wait_for` when a socket timeout is set, so a
task cancelled while it talks to Redis loses the cancellation more often than not. Code of our own
waits with `asyncio.timeout`, which keeps it.
"""

from __future__ import annotations

import asyncio
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
