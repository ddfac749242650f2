"""The ceiling for local generation: a bare llama.cpp batched decode loop, no HTTP, no scheduler.

It decodes in a context built exactly as the engine builds its own (`open_decode_context` with
the same `LocalChatSettings`: n_ctx per sequence, n_seq_max, n_batch, threads, one KV stream
per sequence), with the engine's prompts (chat template applied) and its sampler chain
(temperature, seeded draw). What it leaves out is everything the service adds: the scheduler,
HTTP, JSON, token-to-text, and other requests arriving. The sequences are prefilled together
in one batch, then decoded in lock-step, `tokens` steps each, ignoring end-of-generation;
prefill and decode are both timed, as they are in a request.
Run: `python -m bench.llama_ceiling`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import llama_cpp
from loguru import logger

from genai_service.inference.base import ChatMessage, SamplingParams
from genai_service.inference.local.chat_template import ChatTemplate
from genai_service.inference.local.decode_context import (
    DecodeContext,
    available_cores,
    open_decode_context,
)
from genai_service.inference.local.model_file import resolve_model_path
from genai_service.inference.local.native import free_model, load_model
from genai_service.inference.local.sampler import build_chain
from genai_service.inference.local.vocabulary import Vocabulary
from genai_service.settings import LocalChatSettings

PROMPTS = [
    "Write a long story about a lighthouse keeper.",
    "Explain how a steam engine works, in detail.",
    "Describe a walk through an old city at night.",
    "List many facts about the ocean and explain each.",
]
TEMPERATURE = 0.8


def _check(status: int) -> None:
    if status != 0:
        raise RuntimeError(f"llama_decode failed with status {status}")


def _generate(
    decoder: DecodeContext, prompts: list[list[int]], tokens: int, vocabulary_size: int
) -> float:
    """Tokens/s of generating `tokens` tokens for each prompt, prefill included."""
    samplers = [
        build_chain(vocabulary_size, SamplingParams(temperature=TEMPERATURE, seed=index))
        for index in range(len(prompts))
    ]
    try:
        for slot in range(len(prompts)):
            decoder.clear(slot)
        started = time.perf_counter()
        last = [0] * len(prompts)
        pending = [
            (slot, position, token)
            for slot, prompt in enumerate(prompts)
            for position, token in enumerate(prompt)
        ]
        for start in range(0, len(pending), decoder.capacity):  # prefill, a batch at a time
            decoder.batch.n_tokens = 0
            ends: dict[int, int] = {}
            for slot, position, token in pending[start : start + decoder.capacity]:
                is_last = position == len(prompts[slot]) - 1
                index = decoder.add(token, position, slot, logits=is_last)
                if is_last:
                    ends[slot] = index
            _check(decoder.decode())
            for slot, index in ends.items():
                last[slot] = llama_cpp.llama_sampler_sample(samplers[slot], decoder.context, index)
        positions = [len(prompt) for prompt in prompts]
        for _ in range(tokens - 1):
            decoder.batch.n_tokens = 0
            for slot in range(len(prompts)):
                decoder.add(last[slot], positions[slot], slot)
                positions[slot] += 1
            _check(decoder.decode())
            for slot in range(len(prompts)):
                last[slot] = llama_cpp.llama_sampler_sample(samplers[slot], decoder.context, slot)
        elapsed = time.perf_counter() - started
    finally:
        for sampler in samplers:
            llama_cpp.llama_sampler_free(sampler)
    return len(prompts) * tokens / elapsed


def bare_batched_tokens_per_s(
    sequences: int = 8,
    tokens: int = 128,
    settings: LocalChatSettings | None = None,
    rounds: int = 3,
    *,
    unified: bool = False,
) -> float:
    """Best of `rounds`: generated tokens/s of `sequences` sequences decoded together."""
    settings = settings or LocalChatSettings()
    model = load_model(resolve_model_path(settings.model_path))
    try:
        vocabulary = Vocabulary(model)
        template = ChatTemplate.from_model(model, vocabulary)
        prompts = [
            vocabulary.tokenize(template.render([ChatMessage("user", PROMPTS[i % len(PROMPTS)])]))
            for i in range(sequences)
        ]
        decoder = open_decode_context(model, settings, unified=unified)
        try:
            _generate(decoder, prompts, 16, vocabulary.size)  # warm-up: page the weights in
            return max(_generate(decoder, prompts, tokens, vocabulary.size) for _ in range(rounds))
        finally:
            decoder.close()
    finally:
        free_model(model)


@dataclass(frozen=True, slots=True)
class Configuration:
    threads: int
    unified: bool
    batch: int

    @property
    def label(self) -> str:
        layout = "unified" if self.unified else "per_sequence"
        return f"threads{self.threads}_{layout}_batch{self.batch}"


def configurations() -> list[Configuration]:
    """What this machine can be asked to do: every thread count up to its cores, both KV-cache
    layouts, a large and a small batch."""
    return [
        Configuration(threads, unified, batch)
        for threads in range(1, available_cores() + 1)
        for unified in (False, True)
        for batch in (512, 64)
    ]


def best_ceiling(sequences: int = 8, tokens: int = 128) -> tuple[Configuration, dict[str, float]]:
    """Tokens/s of every configuration; the best one first."""
    figures: dict[str, float] = {}
    best: tuple[float, Configuration] | None = None
    for configuration in configurations():
        settings = LocalChatSettings(n_threads=configuration.threads, n_batch=configuration.batch)
        value = bare_batched_tokens_per_s(
            sequences, tokens, settings, unified=configuration.unified
        )
        figures[configuration.label] = value
        if best is None or value > best[0]:
            best = (value, configuration)
    assert best is not None
    return best[1], figures


def main() -> None:
    logger.remove()  # llama.cpp's load chatter is routed to loguru at debug level
    logger.add(sys.stderr, level="WARNING")
    best, figures = best_ceiling()
    for label, value in figures.items():
        print(f"bare_batched_8_{label}_tokens_per_s {value:.1f}")
    print(f"bare_batched_8_best {best.label}")


if __name__ == "__main__":
    main()
