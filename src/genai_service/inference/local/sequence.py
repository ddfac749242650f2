"""A request while it holds a sequence slot of the engine: its sampler, position, reply text."""

from __future__ import annotations

import time

import llama_cpp

from genai_service.inference.base import FinishReason, SamplingParams, Usage
from genai_service.inference.local.job import (
    EngineEvent,
    Failed,
    Finished,
    GenerationJob,
    TextDelta,
)
from genai_service.inference.local.reply_text import ReplyText
from genai_service.inference.local.vocabulary import Vocabulary
from genai_service.kit.errors import AppError

_SEED_MASK = 0xFFFFFFFF


def build_sampler(sampling: SamplingParams) -> llama_cpp.llama_sampler_p:
    """Greedy at temperature 0; otherwise temperature, then nucleus, then a seeded draw."""
    chain: llama_cpp.llama_sampler_p = llama_cpp.llama_sampler_chain_init(
        llama_cpp.llama_sampler_chain_default_params()
    )
    if sampling.temperature <= 0:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    seed = llama_cpp.LLAMA_DEFAULT_SEED if sampling.seed is None else sampling.seed & _SEED_MASK
    llama_cpp.llama_sampler_chain_add(
        chain, llama_cpp.llama_sampler_init_temp(sampling.temperature)
    )
    if sampling.top_p < 1.0:
        llama_cpp.llama_sampler_chain_add(
            chain, llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1)
        )
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed))
    return chain


class ActiveSequence:
    """Lives on the engine thread only. `slot` is its llama.cpp sequence id and KV-cache stream."""

    def __init__(self, job: GenerationJob, slot: int, vocabulary: Vocabulary) -> None:
        self.job = job
        self.slot = slot
        self.admitted_at = time.monotonic()
        self.prefilled = 0
        self.generated = 0
        self.last_token = -1
        self.listening = True
        self._vocabulary = vocabulary
        self._reply = ReplyText(job.sampling.stop)
        self._sampler = build_sampler(job.sampling)

    @property
    def prefilling(self) -> bool:
        return self.prefilled < len(self.job.prompt)

    @property
    def last_position(self) -> int:
        """Where `last_token` goes in the sequence: it is sampled, not yet decoded."""
        return len(self.job.prompt) + self.generated - 1

    def take_prompt_chunk(self, budget: int) -> tuple[int, list[int]]:
        """The next at most `budget` prompt tokens to prefill, with the position of the first."""
        start = self.prefilled
        chunk = self.job.prompt[start : start + budget]
        self.prefilled += len(chunk)
        return start, chunk

    def sample(self, context: llama_cpp.llama_context_p, batch_index: int) -> FinishReason | None:
        """Draw the next token from the logits at `batch_index`; returns why it ends, if it does."""
        token: int = llama_cpp.llama_sampler_sample(self._sampler, context, batch_index)
        if self._vocabulary.is_end_of_generation(token):
            return "stop"
        self.generated += 1
        self.last_token = token
        text = self._reply.push(self._vocabulary.piece(token))
        if text:
            self._send(TextDelta(text))
        if self._reply.stopped:
            return "stop"
        if self.generated >= self.job.max_tokens:
            return "length"
        return None

    def finish(self, reason: FinishReason) -> None:
        rest = self._reply.flush()
        if rest:
            self._send(TextDelta(rest))
        usage = Usage(prompt_tokens=len(self.job.prompt), completion_tokens=self.generated)
        self._send(Finished(reason, usage))

    def fail(self, error: AppError) -> None:
        self._send(Failed(error))

    def free(self) -> None:
        llama_cpp.llama_sampler_free(self._sampler)

    def _send(self, event: EngineEvent) -> None:
        if self.listening:
            self.listening = self.job.sink(event)
