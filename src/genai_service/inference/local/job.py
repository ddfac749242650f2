"""What the async façade hands the engine thread, and the events that come back."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from genai_service.inference.base import FinishReason, SamplingParams, TokenLogprob, Usage
from genai_service.kit.errors import AppError


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()
    """Of the tokens this text completes (when the request asked for them)."""
    tokens: int = 0
    """Tokens generated since the previous delta (text held back for a possible stop sequence
    goes out later, with the count of every token in it)."""


@dataclass(frozen=True, slots=True)
class Finished:
    reason: FinishReason
    usage: Usage


@dataclass(frozen=True, slots=True)
class Failed:
    error: AppError


EngineEvent: TypeAlias = TextDelta | Finished | Failed

EventSink: TypeAlias = Callable[[EngineEvent], bool]
"""Called on the engine thread; returns False once nobody listens any more."""


@dataclass(eq=False, slots=True)
class GenerationJob:
    """One request: its prompt tokens, how to sample, where its events go. Hashed by identity."""

    prompt: list[int]
    sampling: SamplingParams
    max_tokens: int
    sink: EventSink
    grammar: str | None = None
    """A GBNF grammar the reply must follow (structured output, tool calls)."""
    submitted_at: float = field(default_factory=time.monotonic)
