"""Hearing at once that the process was told to stop (SIGTERM, SIGINT).

An ASGI app hears of shutdown from its lifespan only after the server has waited for every open
connection to close. To drain, the app must know at the signal itself: stop admitting work, and
start the grace period of what runs. `on_exit_signal` puts a handler in front of the one the
server installed (uvicorn's, in each worker process), which it then calls as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def on_exit_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block, `callback` runs on the current event loop when an exit signal comes.

    Only where a server handles the signals (a callable handler in the main thread): without
    one, the signal ends the process as it always did, and an app served from another thread
    drains from its lifespan.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in EXIT_SIGNALS}

    def handle(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to drain
            loop.call_soon_threadsafe(callback)
        handler = previous[signal.Signals(signum)]
        if callable(handler):
            handler(signum, frame)

    installed = [sig for sig, handler in previous.items() if callable(handler)]
    for sig in installed:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig in installed:
            if signal.getsignal(sig) is handle:
                signal.signal(sig, previous[sig])
