"""Drawing the next token of one sequence: its llama.cpp sampler chain, a grammar, logprobs.

Each sequence of the batch has a sampler of its own, so requests with different settings,
constrained or free, are decoded side by side.

A grammar is applied lazily, as llama.cpp's own server does: the chain draws a token from the
unconstrained distribution and the grammar only checks that one token. Most tokens of a
structured reply pass. When one does not, the draw is repeated from what the grammar allows
among the most likely candidates (`SHORTLIST`), and only if it allows none of them from the
whole vocabulary: checking every token of the vocabulary against a grammar costs milliseconds,
on the engine thread, for every sequence of the batch.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import cast

import llama_cpp
import numpy as np
import numpy.typing as npt

from genai_service.inference.base import SamplingParams, TokenLogprob, TopLogprob
from genai_service.inference.local.vocabulary import Vocabulary
from genai_service.kit.errors import BadRequest

_SEED_MASK = 0xFFFFFFFF
SHORTLIST = 64
"""Candidates a rejected draw is repeated from before the whole vocabulary is tried."""
_CANDIDATE = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
"""The layout of `llama_token_data`, so the candidates are filled by numpy, not a Python loop."""


class GrammarRejected(BadRequest):
    """llama.cpp could not compile the grammar a request's output format was turned into."""

    title = "Output format not supported"
    slug = "output-format-unsupported"


@dataclass(frozen=True, slots=True)
class Draw:
    token: int
    logprob: TokenLogprob | None = None


def build_chain(vocabulary_size: int, sampling: SamplingParams) -> llama_cpp.llama_sampler_p:
    """Logit bias and penalties, then greedy at temperature 0; otherwise top-k, temperature,
    nucleus, min-p and a seeded draw."""
    chain: llama_cpp.llama_sampler_p = llama_cpp.llama_sampler_chain_init(
        llama_cpp.llama_sampler_chain_default_params()
    )

    def add(sampler: llama_cpp.llama_sampler_p) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)

    if sampling.logit_bias:
        biases = (llama_cpp.llama_logit_bias * len(sampling.logit_bias))()
        for entry, (token, bias) in zip(biases, sampling.logit_bias, strict=True):
            entry.token, entry.bias = token, bias
        add(llama_cpp.llama_sampler_init_logit_bias(vocabulary_size, len(biases), biases))
    if sampling.presence_penalty or sampling.frequency_penalty or sampling.repetition_penalty != 1:
        # Over the whole reply: only generated tokens are accepted into the sampler.
        add(
            llama_cpp.llama_sampler_init_penalties(
                vocabulary_size,
                max(sampling.max_tokens, 1),
                sampling.repetition_penalty,
                sampling.frequency_penalty,
                sampling.presence_penalty,
            )
        )
    if sampling.temperature <= 0:
        add(llama_cpp.llama_sampler_init_greedy())
        return chain
    if sampling.top_k > 0:
        add(llama_cpp.llama_sampler_init_top_k(sampling.top_k))
    add(llama_cpp.llama_sampler_init_temp(sampling.temperature))
    if sampling.top_p < 1.0:
        add(llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
    if sampling.min_p > 0:
        add(llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
    seed = llama_cpp.LLAMA_DEFAULT_SEED if sampling.seed is None else sampling.seed & _SEED_MASK
    add(llama_cpp.llama_sampler_init_dist(seed))
    return chain


class TokenSampler:
    """Lives on the engine thread with its sequence; `free` it when the sequence leaves."""

    def __init__(
        self, vocabulary: Vocabulary, sampling: SamplingParams, grammar: str | None = None
    ) -> None:
        self._vocabulary = vocabulary
        self._top_logprobs = sampling.logprobs
        self._chain = build_chain(vocabulary.size, sampling)
        self._grammar: llama_cpp.llama_sampler_p | None = None
        # Logit biases can lift any token above the shortlist: their draws consider them all.
        self._shortlist = 0 if sampling.logit_bias else SHORTLIST
        if grammar is not None:
            compiled = llama_cpp.llama_sampler_init_grammar(
                vocabulary.handle, grammar.encode("utf-8"), b"root"
            )
            if not compiled:
                llama_cpp.llama_sampler_free(self._chain)
                raise GrammarRejected("the output format could not be compiled into a grammar")
            self._grammar = compiled
            self._candidates = np.zeros(vocabulary.size, dtype=_CANDIDATE)
            self._candidates["id"] = np.arange(vocabulary.size, dtype=np.int32)
            self._all = llama_cpp.llama_token_data_array()
            self._one = llama_cpp.llama_token_data()
            self._one_array = llama_cpp.llama_token_data_array(
                data=ctypes.pointer(self._one), size=1, selected=-1, sorted=False
            )

    def draw(self, context: llama_cpp.llama_context_p, batch_index: int) -> Draw:
        """The next token from the logits at `batch_index` of the last decode."""
        if self._grammar is None:
            token: int = llama_cpp.llama_sampler_sample(self._chain, context, batch_index)
        else:
            token = self._draw_constrained(self._grammar, self._logits(context, batch_index))
        if self._top_logprobs is None:
            return Draw(token)
        return Draw(token, self._logprob(self._logits(context, batch_index), token))

    def free(self) -> None:
        llama_cpp.llama_sampler_free(self._chain)
        if self._grammar is not None:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None

    def _logits(
        self, context: llama_cpp.llama_context_p, batch_index: int
    ) -> npt.NDArray[np.float32]:
        pointer = llama_cpp.llama_get_logits_ith(context, batch_index)
        return np.ctypeslib.as_array(pointer, shape=(self._vocabulary.size,))

    def _draw_constrained(
        self, grammar: llama_cpp.llama_sampler_p, logits: npt.NDArray[np.float32]
    ) -> int:
        token = self._apply(logits, self._chain)
        if not self._grammar_allows(grammar, token):
            shortlist = self._shortlisted(logits)
            allowed = self._apply(logits, grammar, self._chain, among=shortlist)
            token = allowed if allowed >= 0 else self._apply(logits, grammar, self._chain)
        llama_cpp.llama_sampler_accept(grammar, token)
        llama_cpp.llama_sampler_accept(self._chain, token)
        return token

    def _shortlisted(self, logits: npt.NDArray[np.float32]) -> npt.NDArray[np.int32] | None:
        if not self._shortlist or self._shortlist >= len(logits):
            return None
        return np.argpartition(logits, -self._shortlist)[-self._shortlist :].astype(np.int32)

    def _apply(
        self,
        logits: npt.NDArray[np.float32],
        *samplers: llama_cpp.llama_sampler_p,
        among: npt.NDArray[np.int32] | None = None,
    ) -> int:
        """Run `samplers` over the candidates (every token, or those `among`); the token they
        select, or -1 when they leave none (a grammar that allows none of them)."""
        if among is None:
            candidates_buffer = self._candidates
            candidates_buffer["logit"] = logits
            candidates_buffer["p"] = 0.0
        else:
            candidates_buffer = np.zeros(len(among), dtype=_CANDIDATE)
            candidates_buffer["id"] = among
            candidates_buffer["logit"] = logits[among]
        candidates = self._all
        # Samplers may point `data` elsewhere and shrink `size`: reset them for every draw.
        candidates.data = cast(
            "ctypes.Array[llama_cpp.llama_token_data]",
            candidates_buffer.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)),
        )
        candidates.size = len(candidates_buffer)
        candidates.selected = -1
        candidates.sorted = False
        for sampler in samplers:
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
        if candidates.selected < 0:
            return -1
        selected = candidates.data[candidates.selected]
        return -1 if math.isinf(selected.logit) else int(selected.id)

    def _grammar_allows(self, grammar: llama_cpp.llama_sampler_p, token: int) -> bool:
        one = self._one
        one.id = cast("ctypes.c_int32", token)
        one.logit, one.p = 1.0, 0.0
        self._one_array.selected = -1
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(self._one_array))
        return not math.isinf(one.logit)

    def _logprob(self, logits: npt.NDArray[np.float32], token: int) -> TokenLogprob:
        """Of the model's own distribution, before sampling settings reshape it (OpenAI's)."""
        shifted = logits - logits.max()
        logprobs = shifted - math.log(float(np.exp(shifted).sum()))
        top: tuple[TopLogprob, ...] = ()
        count = self._top_logprobs or 0
        if count:
            best = np.argpartition(logprobs, -count)[-count:]
            best = best[np.argsort(logprobs[best])[::-1]]
            top = tuple(self._top(int(i), float(logprobs[i])) for i in best)
        piece = self._vocabulary.piece(token)
        return TokenLogprob(
            token=piece.decode("utf-8", errors="replace"),
            bytes=piece,
            logprob=float(logprobs[token]),
            top=top,
        )

    def _top(self, token: int, logprob: float) -> TopLogprob:
        piece = self._vocabulary.piece(token)
        return TopLogprob(piece.decode("utf-8", errors="replace"), piece, logprob)
