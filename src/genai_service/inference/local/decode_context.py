"""The llama.cpp context the engine decodes in, with its batch buffer, built from the settings.

The KV cache is not unified: each sequence slot has its own stream of `n_ctx` cells. That gives
every request its full window whatever the others do, and makes a sequence's logits independent
of what else is in the batch, so a seeded generation is the same alone or beside others.

With one stream per sequence, `llama_decode` computes a batch in micro-batches that each take
the same number of tokens from a run of sequences whose ids follow each other (0, 1, 2, ...)
in batch order. A batch whose tokens come in slot order, from slots that form a compact range,
is one computation for all generating sequences (plus one for the rest of a prompt being
prefilled); the same tokens in another order can take one computation per sequence. So the
engine fills the batch in slot order and hands out the lowest free slot.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import cast

import llama_cpp
from loguru import logger

from genai_service.inference.base import ProviderError
from genai_service.settings import LocalChatSettings


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(slots=True)
class DecodeContext:
    context: llama_cpp.llama_context_p
    memory: llama_cpp.llama_memory_t
    batch: llama_cpp.llama_batch
    capacity: int
    """Tokens one decode step takes: `n_batch`, and at least one per sequence slot."""
    window: int
    """Tokens one sequence holds, prompt and reply together."""
    threads: int
    """Threads the next decode uses (`use_threads` changes it)."""

    def use_threads(self, threads: int) -> None:
        if threads != self.threads:
            llama_cpp.llama_set_n_threads(self.context, threads, threads)
            self.threads = threads

    def add(self, token: int, position: int, slot: int, *, logits: bool = True) -> int:
        """Append a token of sequence `slot` to the batch; returns its index in the batch."""
        batch = self.batch
        index = batch.n_tokens
        batch.token[index] = token
        # llama-cpp-python types `pos` as a 2-D array; in llama.h it is `llama_pos *`.
        cast("ctypes.Array[ctypes.c_int32]", batch.pos)[index] = position
        batch.n_seq_id[index] = 1
        batch.seq_id[index][0] = slot
        batch.logits[index] = 1 if logits else 0
        batch.n_tokens = index + 1
        return index

    def decode(self) -> int:
        """Run the batch through the model; llama.cpp's status, 0 on success."""
        status: int = llama_cpp.llama_decode(self.context, self.batch)
        return status

    def clear(self, slot: int) -> None:
        llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)

    def trim(self, slot: int, keep: int) -> None:
        """Drop the cache of `slot` from position `keep` on: the first `keep` tokens stay."""
        llama_cpp.llama_memory_seq_rm(self.memory, slot, keep, -1)

    def copy(self, source: int, target: int, keep: int) -> None:
        """`target` gets the first `keep` cached tokens of `source`.

        Slots have KV streams of their own, and llama.cpp copies between streams only whole
        (the data moves at the start of the next decode); the rest is dropped at once.
        """
        llama_cpp.llama_memory_seq_cp(self.memory, source, target, -1, -1)
        self.trim(target, keep)

    def close(self) -> None:
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.context)


def open_decode_context(
    model: llama_cpp.llama_model_p, settings: LocalChatSettings, *, unified: bool = False
) -> DecodeContext:
    """The engine's context; `unified` (one KV buffer for all sequences) only for comparing
    layouts in benchmarks: the engine relies on a stream per sequence (see above)."""
    threads = settings.n_threads or available_cores()
    capacity = max(settings.n_batch, settings.n_seq_max)
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = settings.n_ctx * settings.n_seq_max
    params.n_seq_max = settings.n_seq_max
    params.kv_unified = unified
    params.n_batch = capacity
    params.n_ubatch = capacity
    params.n_threads = threads
    params.n_threads_batch = threads
    params.no_perf = True
    context: llama_cpp.llama_context_p | None = llama_cpp.llama_init_from_model(model, params)
    if context is None:
        raise ProviderError("llama.cpp could not create a context for the chat model")
    memory: llama_cpp.llama_memory_t | None = llama_cpp.llama_get_memory(context)
    if memory is None:
        llama_cpp.llama_free(context)
        raise ProviderError("the chat model has no KV cache")
    per_sequence: int = llama_cpp.llama_n_ctx_seq(context)
    window = min(settings.n_ctx, per_sequence)
    trained: int = llama_cpp.llama_model_n_ctx_train(model)
    if window > trained:
        logger.warning("n_ctx {} is beyond the {} tokens the model was trained on", window, trained)
    batch: llama_cpp.llama_batch = llama_cpp.llama_batch_init(capacity, 0, 1)
    return DecodeContext(context, memory, batch, capacity, window, threads)
