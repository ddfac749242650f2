"""A request while it holds a sequence slot of the engine: its sampler, position, reply text."""

from __future__ import annotations

import time

import llama_cpp

from genai_service.inference.base import FinishReason, TokenLogprob, Usage
from genai_service.inference.local.job import (
    EngineEvent,
    Failed,
    Finished,
    GenerationJob,
    TextDelta,
)
from genai_service.inference.local.reply_text import ReplyText
from genai_service.inference.local.sampler import TokenSampler
from genai_service.inference.local.vocabulary import Vocabulary
from genai_service.kit.errors import AppError


class ActiveSequence:
    """Lives on the engine thread only. `slot` is its llama.cpp sequence id and KV-cache stream.

    Building one compiles the request's grammar, if it has one: `GrammarRejected` then means
    the request cannot be served.
    """

    def __init__(
        self, job: GenerationJob, slot: int, vocabulary: Vocabulary, *, reused: int = 0
    ) -> None:
        self.job = job
        self.slot = slot
        self.admitted_at = time.monotonic()
        self.prefilled = reused
        self.cached: list[int] = job.prompt[:reused]
        """The tokens in the slot's KV cache, in order (once the decode they are in is done)."""
        self.generated = 0
        self.last_token = -1
        self.listening = True
        self._vocabulary = vocabulary
        self._reply = ReplyText(job.sampling.stop)
        self._sampler = TokenSampler(vocabulary, job.sampling, job.grammar)
        self._held_logprobs: list[tuple[int, TokenLogprob]] = []
        self._unsent_tokens = 0
        """Logprobs of tokens whose text is held back (a possible stop sequence), with the
        length of that text."""

    @property
    def prefilling(self) -> bool:
        return self.prefilled < len(self.job.prompt)

    @property
    def last_position(self) -> int:
        """Where `last_token` goes in the sequence: it is sampled, not yet decoded."""
        return len(self.job.prompt) + self.generated - 1

    def reuse(self, count: int) -> None:
        """The first `count` prompt tokens are in the KV cache already: prefill the rest."""
        self.prefilled = count
        self.cached = self.job.prompt[:count]

    def take_prompt_chunk(self, budget: int) -> tuple[int, list[int]]:
        """The next at most `budget` prompt tokens to prefill, with the position of the first."""
        start = self.prefilled
        chunk = self.job.prompt[start : start + budget]
        self.prefilled += len(chunk)
        self.cached.extend(chunk)
        return start, chunk

    def take_last_token(self) -> tuple[int, int]:
        """The sampled token to decode next, with its position."""
        self.cached.append(self.last_token)
        return self.last_token, self.last_position

    def sample(self, context: llama_cpp.llama_context_p, batch_index: int) -> FinishReason | None:
        """Draw the next token from the logits at `batch_index`; returns why it ends, if it does."""
        draw = self._sampler.draw(context, batch_index)
        token = draw.token
        if self._vocabulary.is_end_of_generation(token):
            return "stop"
        self.generated += 1
        self._unsent_tokens += 1
        self.last_token = token
        piece = self._vocabulary.piece(token)
        if draw.logprob is not None:
            self._held_logprobs.append((len(piece.decode("utf-8", errors="ignore")), draw.logprob))
        text = self._reply.push(piece)
        if text:
            self._send(TextDelta(text, self._logprobs_within(len(text)), self._take_tokens()))
        if self._reply.stopped:
            return "stop"
        if self.generated >= self.job.max_tokens:
            return "length"
        return None

    def finish(self, reason: FinishReason) -> None:
        rest = self._reply.flush()
        held = () if self._reply.stopped else tuple(lp for _, lp in self._held_logprobs)
        self._held_logprobs.clear()
        if rest or held or self._unsent_tokens:
            self._send(TextDelta(rest, held, self._take_tokens()))
        usage = Usage(prompt_tokens=len(self.job.prompt), completion_tokens=self.generated)
        self._send(Finished(reason, usage))

    def fail(self, error: AppError) -> None:
        self._send(Failed(error))

    def free(self) -> None:
        self._sampler.free()

    def _take_tokens(self) -> int:
        count, self._unsent_tokens = self._unsent_tokens, 0
        return count

    def _logprobs_within(self, length: int) -> tuple[TokenLogprob, ...]:
        """The held logprobs of tokens whose text fits in the `length` characters sent now.

        Tokens cut off by a stop sequence are never sent, and neither are their logprobs.
        """
        sent: list[TokenLogprob] = []
        while self._held_logprobs and self._held_logprobs[0][0] <= length:
            size, logprob = self._held_logprobs.pop(0)
            length -= size
            sent.append(logprob)
        if self._reply.stopped:
            self._held_logprobs.clear()
        return tuple(sent)

    def _send(self, event: EngineEvent) -> None:
        if self.listening:
            self.listening = self.job.sink(event)
