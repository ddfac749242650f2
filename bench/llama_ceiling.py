"""The ceiling for local generation: a bare llama.cpp batched decode loop, no HTTP, no scheduler.

Same model, same context layout (one KV stream per sequence) and greedy sampling as the engine,
but the sequences are prefilled up front and then decoded in lock-step, `tokens` steps each,
ignoring end-of-generation. Only the decode steps are timed.
Run: `python -m bench.llama_ceiling`.
"""

from __future__ import annotations

import ctypes
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import llama_cpp
from loguru import logger

from genai_service.inference.base import ChatMessage
from genai_service.inference.local.chat_template import ChatTemplate
from genai_service.inference.local.engine import available_cores
from genai_service.inference.local.model_file import resolve_model_path
from genai_service.inference.local.native import free_model, load_model
from genai_service.inference.local.vocabulary import Vocabulary

PROMPTS = [
    "Write a long story about a lighthouse keeper.",
    "Explain how a steam engine works, in detail.",
    "Describe a walk through an old city at night.",
    "List many facts about the ocean and explain each.",
]


@contextmanager
def _context(
    model: llama_cpp.llama_model_p, sequences: int, window: int, threads: int
) -> Iterator[llama_cpp.llama_context_p]:
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = window * sequences
    params.n_seq_max = sequences
    params.kv_unified = False
    params.n_batch = params.n_ubatch = window
    params.n_threads = params.n_threads_batch = threads
    params.no_perf = True
    context: llama_cpp.llama_context_p | None = llama_cpp.llama_init_from_model(model, params)
    if context is None:
        raise RuntimeError("llama.cpp could not create a context")
    try:
        yield context
    finally:
        llama_cpp.llama_free(context)


def _fill(batch: llama_cpp.llama_batch, entries: list[tuple[int, int, int, bool]]) -> None:
    """Put (token, position, sequence, wants_logits) entries into `batch`."""
    batch.n_tokens = len(entries)
    for index, (token, position, sequence, logits) in enumerate(entries):
        batch.token[index] = token
        # llama-cpp-python types `pos` as a 2-D array; in llama.h it is `llama_pos *`.
        cast("ctypes.Array[ctypes.c_int32]", batch.pos)[index] = position
        batch.n_seq_id[index] = 1
        batch.seq_id[index][0] = sequence
        batch.logits[index] = 1 if logits else 0


def _decode(context: llama_cpp.llama_context_p, batch: llama_cpp.llama_batch) -> None:
    status: int = llama_cpp.llama_decode(context, batch)
    if status != 0:
        raise RuntimeError(f"llama_decode failed with status {status}")


def _decode_tokens_per_s(
    model: llama_cpp.llama_model_p, prompts: list[list[int]], tokens: int, threads: int
) -> float:
    sequences = len(prompts)
    samplers = []
    for _ in range(sequences):
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        samplers.append(chain)
    # A window of whole 256-token pages that holds the longest prompt and the reply.
    window = 256 * math.ceil((max(map(len, prompts)) + tokens + 1) / 256)
    batch: llama_cpp.llama_batch = llama_cpp.llama_batch_init(max(window, sequences), 0, 1)
    try:
        with _context(model, sequences, window, threads) as context:
            last: list[int] = []
            positions: list[int] = []
            for sequence, prompt in enumerate(prompts):  # prefill, not timed
                _fill(
                    batch,
                    [(t, i, sequence, i == len(prompt) - 1) for i, t in enumerate(prompt)],
                )
                _decode(context, batch)
                last.append(llama_cpp.llama_sampler_sample(samplers[sequence], context, -1))
                positions.append(len(prompt))
            started = time.perf_counter()
            for _ in range(tokens):
                _fill(batch, [(last[s], positions[s], s, True) for s in range(sequences)])
                _decode(context, batch)
                for s in range(sequences):
                    last[s] = llama_cpp.llama_sampler_sample(samplers[s], context, s)
                    positions[s] += 1
            elapsed = time.perf_counter() - started
    finally:
        llama_cpp.llama_batch_free(batch)
        for chain in samplers:
            llama_cpp.llama_sampler_free(chain)
    return sequences * tokens / elapsed


def _measure(sequences: int, tokens: int, model_path: Path | None, threads: int | None) -> float:
    model = load_model(resolve_model_path(model_path))
    try:
        vocabulary = Vocabulary(model)
        template = ChatTemplate.from_model(model, vocabulary)
        prompts = [
            vocabulary.tokenize(template.render([ChatMessage("user", PROMPTS[i % len(PROMPTS)])]))
            for i in range(sequences)
        ]
        return _decode_tokens_per_s(model, prompts, tokens, threads or available_cores())
    finally:
        free_model(model)


def bare_batched_tokens_per_s(
    sequences: int = 8,
    tokens: int = 128,
    model_path: Path | None = None,
    threads: int | None = None,
) -> float:
    """Generated tokens/s of `sequences` sequences decoded together, `tokens` steps each."""
    return _measure(sequences, tokens, model_path, threads)


def bare_single_sequence_tokens_per_s(
    tokens: int = 128, model_path: Path | None = None, threads: int | None = None
) -> float:
    return _measure(1, tokens, model_path, threads)


def main() -> None:
    logger.remove()  # llama.cpp's load chatter is routed to loguru at debug level
    logger.add(sys.stderr, level="WARNING")
    bare_single_sequence_tokens_per_s(tokens=16)  # warm-up: page the weights in
    print(f"bare_batched_decode_tokens_per_s {bare_batched_tokens_per_s(8, 128):.1f}")
    print(f"bare_single_sequence_tokens_per_s {bare_single_sequence_tokens_per_s(128):.1f}")


if __name__ == "__main__":
    main()
