"""The encoder's death noticed at once, also when the pool alone would hang on it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import struct
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest

from genai_service.inference.embeddings.encoder_watch import EncoderDeathWatch


async def test_a_worker_killed_mid_result_fails_pending_calls_instead_of_hanging() -> None:
    """A worker killed while it sends a result leaves half a message in the result pipe: the
    pool's manager thread waits for the rest forever, and every call and the shutdown with it.
    The test puts the pool in exactly that state (a length header promising bytes that never
    come), then kills the worker."""
    executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    loop = asyncio.get_running_loop()
    pid = await loop.run_in_executor(executor, os.getpid)
    died = asyncio.Event()
    watch = EncoderDeathWatch(executor, pid, on_death=died.set)
    try:
        pending = loop.run_in_executor(executor, time.sleep, 60)
        result_pipe = executor._result_queue._writer  # type: ignore[attr-defined]
        os.write(result_pipe.fileno(), struct.pack("!i", 100_000) + b"half a result")
        await asyncio.sleep(0.2)  # the manager thread is now stuck reading the rest
        os.kill(pid, signal.SIGKILL)
        await asyncio.wait_for(died.wait(), 10)
        with pytest.raises(BrokenProcessPool):
            await asyncio.wait_for(pending, 10)
    finally:
        watch.close()
        await asyncio.wait_for(asyncio.to_thread(executor.shutdown, wait=True), 10)


async def test_a_pool_shut_down_on_purpose_is_not_reported_dead() -> None:
    executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    loop = asyncio.get_running_loop()
    pid = await loop.run_in_executor(executor, os.getpid)
    deaths: list[int] = []
    watch = EncoderDeathWatch(executor, pid, on_death=lambda: deaths.append(pid))
    watch.close()
    await asyncio.to_thread(executor.shutdown, wait=True)
    await asyncio.sleep(0.1)
    assert deaths == []
