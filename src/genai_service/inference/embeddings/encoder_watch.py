"""Noticing at once that the encoder process died, whatever it was doing at that moment."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor


class EncoderDeathWatch:
    """Calls `on_death` as soon as the worker process `pid` of `executor` ends (Linux, through a
    pidfd the event loop watches; elsewhere it does nothing and the pool notices on its own).

    It also unblocks the pool. A worker killed while it sends a result (the kernel's
    out-of-memory killer picks its moment) leaves half a message in the result pipe, and the
    pool's manager thread then waits for the rest forever: the parent holds the pipe's write end
    too, so no end of file ever comes. Every call would hang, and so would shutdown. Closing the
    parent's write end once the worker is known to be dead turns that wait into an end of file,
    which the pool handles as any broken pool: pending calls fail with `BrokenProcessPool`.
    """

    def __init__(
        self, executor: ProcessPoolExecutor, pid: int, on_death: Callable[[], None]
    ) -> None:
        self._executor = executor
        self._on_death = on_death
        self._loop = asyncio.get_running_loop()
        self._pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            try:
                self._pidfd = os.pidfd_open(pid)
            except ProcessLookupError:  # already gone: the pool will say so itself
                return
            self._loop.add_reader(self._pidfd, self._died)

    def close(self) -> None:
        """Stop watching (before shutting the pool down on purpose)."""
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            self._loop.remove_reader(pidfd)
            os.close(pidfd)

    def _died(self) -> None:
        self.close()
        result_queue = getattr(self._executor, "_result_queue", None)
        writer = getattr(result_queue, "_writer", None)
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()
        self._on_death()
