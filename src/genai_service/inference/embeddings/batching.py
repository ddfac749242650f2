"""Micro-batching: concurrent embedding requests coalesced into one `encode` call (or one call
of any per-text function of the encoder process, such as counting tokens)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass
from typing import Generic, TypeVar

from loguru import logger

from genai_service.inference.base import ModelNotReady, ModelProcessStopped, ProviderError

R = TypeVar("R")
Encode = Callable[[list[str]], list[R]]
"""One result per text, in order: a vector, for `encode`."""


@dataclass(slots=True)
class _Request(Generic[R]):
    texts: Sequence[str]
    future: asyncio.Future[list[R]]
    arrived: float


class MicroBatcher(Generic[R]):
    """Runs `encode` on `executor` for batches of up to `max_batch` texts gathered from many calls.

    - A full batch is submitted at once, by the call that fills it, even while earlier batches
      are still encoding. Under a burst the event loop can be busy for a long while with the
      requests themselves; batches submitted from inside the burst keep the encoder working
      meanwhile instead of waiting for the burst to end.
    - A partial batch goes when nothing is encoding and its oldest request has waited
      `max_wait_s`. Requests arriving during an encode join the next batch, so under steady
      load batches fill up without any waiting.
    - A request larger than `max_batch` is split across batches. Requests whose caller went
      away are left out.

    The event loop only submits and collects; `encode` (which may hold the GIL in parts) never
    runs on it.
    """

    def __init__(
        self,
        encode: Encode[R],
        *,
        executor: Executor,
        max_batch: int,
        max_wait_s: float,
        on_broken: Callable[[], None] | None = None,
    ) -> None:
        """`on_broken` is called when the executor can take no more work (its process died)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._encode = encode
        self._executor = executor
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._on_broken = on_broken
        self._queue: deque[_Request[R]] = deque()
        self._queued_texts = 0
        self._encoding: set[asyncio.Future[list[R]]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.encode_calls = 0
        """`encode` calls made so far: fewer than `embed` calls when batching works."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._submit_partial_batches(), name="embedding-micro-batcher"
            )
            self._task.add_done_callback(self._on_stopped)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        for encoding in list(self._encoding):  # a batch already in the encoder still finishes
            encoding.cancel()
        self._fail_queued()

    async def embed(self, texts: Sequence[str]) -> list[R]:
        if not self.running:
            raise ModelNotReady("the embedding model is not running")
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[list[R]]] = []
        for offset in range(0, len(texts), self._max_batch):
            piece = texts[offset : offset + self._max_batch]
            futures.append(loop.create_future())
            self._queue.append(_Request(piece, futures[-1], loop.time()))
            self._queued_texts += len(piece)
        while self._queued_texts >= self._max_batch:
            self._submit(loop)
        self._wake.set()
        try:
            return [vector for future in futures for vector in await future]
        finally:
            for future in futures:  # a cancelled or failed call frees its other pieces' slots
                future.cancel()

    async def _submit_partial_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            timeout: float | None = None
            if self._queue and not self._encoding:
                timeout = self._queue[0].arrived + self._max_wait_s - loop.time()
                if timeout <= 0:
                    self._submit(loop)
                    continue
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _submit(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._take_batch()
        if not batch:
            return
        texts = [text for request in batch for text in request.texts]
        self.encode_calls += 1
        try:
            encoding = loop.run_in_executor(self._executor, self._encode, texts)
        except Exception as error:  # a broken or shut-down pool refuses work at once
            self._fail_batch(batch, error)
            return
        self._encoding.add(encoding)
        encoding.add_done_callback(lambda done: self._deliver(batch, done))

    def _deliver(self, batch: list[_Request[R]], encoding: asyncio.Future[list[R]]) -> None:
        self._encoding.discard(encoding)
        self._wake.set()
        if encoding.cancelled():
            for request in batch:
                _fail(request, ModelNotReady("the embedding model was closed"))
            return
        error = encoding.exception()
        if error is not None:  # every request of the batch gets the failure; others go on
            self._fail_batch(batch, error)
            return
        vectors = encoding.result()
        offset = 0
        for request in batch:
            if not request.future.done():
                request.future.set_result(vectors[offset : offset + len(request.texts)])
            offset += len(request.texts)

    def _fail_batch(self, batch: list[_Request[R]], error: BaseException) -> None:
        texts = sum(len(request.texts) for request in batch)
        logger.opt(exception=error).error("embedding batch of {} texts failed", texts)
        broken = isinstance(error, BrokenExecutor)
        failure = (
            ModelProcessStopped("the embedding model's process stopped")
            if broken
            else ProviderError(f"the embedding model failed ({type(error).__name__})")
        )
        for request in batch:
            _fail(request, failure)
        if broken and self._on_broken is not None:
            self._on_broken()

    def _take_batch(self) -> list[_Request[R]]:
        batch: list[_Request[R]] = []
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


def _fail(request: _Request[R], error: Exception) -> None:
    if not request.future.done():
        request.future.set_exception(error)
