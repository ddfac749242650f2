"""Micro-batching: concurrent embedding requests coalesced into one `encode` call."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from loguru import logger

from genai_service.inference.base import ModelNotReady, ProviderError

Encode = Callable[[list[str]], list[list[float]]]


@dataclass(slots=True)
class _Request:
    texts: Sequence[str]
    future: asyncio.Future[list[list[float]]]
    arrived: float


class MicroBatcher:
    """Runs `encode` on `executor` for batches of up to `max_batch` texts gathered from many calls.

    The oldest waiting request waits at most `max_wait_s` for others to join its batch; a full batch
    goes at once. Batches are encoded one at a time, and requests arriving during an encode form the
    next batch, so under load batches fill up without any waiting. A request larger than
    `max_batch` is split across batches. The event loop only awaits futures; `encode` (which may
    hold the GIL in parts) never runs on it.
    """

    def __init__(
        self, encode: Encode, *, executor: Executor, max_batch: int, max_wait_s: float
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._encode = encode
        self._executor = executor
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: deque[_Request] = deque()
        self._queued_texts = 0
        self._arrival = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.encode_calls = 0
        """`encode` calls made so far: fewer than `embed` calls when batching works."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="embedding-micro-batcher"
            )
            self._task.add_done_callback(self._on_stopped)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        self._fail_queued()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not self.running:
            raise ModelNotReady("the embedding model is not running")
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[list[list[float]]]] = []
        for offset in range(0, len(texts), self._max_batch):
            piece = texts[offset : offset + self._max_batch]
            futures.append(loop.create_future())
            self._queue.append(_Request(piece, futures[-1], loop.time()))
            self._queued_texts += len(piece)
        self._arrival.set()
        try:
            return [vector for future in futures for vector in await future]
        finally:
            for future in futures:  # a cancelled or failed call frees its other pieces' slots
                future.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_for_batch(loop)
            batch = self._take_batch()
            if not batch:
                continue
            texts = [text for request in batch for text in request.texts]
            self.encode_calls += 1
            try:
                vectors = await loop.run_in_executor(self._executor, self._encode, texts)
            except asyncio.CancelledError:
                for request in batch:
                    _fail(request, ModelNotReady("the embedding model was closed"))
                raise
            except (
                Exception
            ) as exc:  # every request of the batch gets the failure, the loop goes on
                logger.opt(exception=exc).error("embedding batch of {} texts failed", len(texts))
                for request in batch:
                    _fail(
                        request, ProviderError(f"the embedding model failed ({type(exc).__name__})")
                    )
                continue
            offset = 0
            for request in batch:
                if not request.future.done():
                    request.future.set_result(vectors[offset : offset + len(request.texts)])
                offset += len(request.texts)

    async def _wait_for_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        while not self._queue:
            self._arrival.clear()
            await self._arrival.wait()
        deadline = self._queue[0].arrived + self._max_wait_s
        while self._queued_texts < self._max_batch:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrival.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrival.wait()
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Request]:
        batch: list[_Request] = []
        size = 0
        while self._queue:
            request = self._queue[0]
            if not request.future.done() and batch and size + len(request.texts) > self._max_batch:
                break
            self._queue.popleft()
            self._queued_texts -= len(request.texts)
            if not request.future.done():  # skip requests whose caller went away
                batch.append(request)
                size += len(request.texts)
        return batch

    def _on_stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).error("the embedding micro-batcher crashed")
        self._fail_queued()

    def _fail_queued(self) -> None:
        while self._queue:
            _fail(self._queue.popleft(), ModelNotReady("the embedding model is not running"))
        self._queued_texts = 0


def _fail(request: _Request, error: Exception) -> None:
    if not request.future.done():
        request.future.set_exception(error)
