"""The prompt of a chat turn: system prompt, numbered sources, and the history that fits.

Everything is measured with the model's own `count_tokens`, so the prompt plus `max_tokens` never
exceeds the model's context window. Counting tokenizes text, so call `build_prompt` off the event
loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from genai_service.inference.base import ChatMessage, ChatModel, PromptTooLong
from genai_service.retrieval.sources import Source

SOURCES_INSTRUCTION = (
    "Answer the user's question using the numbered sources below. After each statement that "
    "uses a source, cite it by its number in square brackets, like [1]. If the sources do not "
    "contain the answer, say so."
)


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: list[ChatMessage]
    sources: list[Source]
    """The sources in the prompt, in the order of their numbers ([1] first)."""
    prompt_tokens: int


def format_sources(sources: Sequence[Source]) -> str:
    blocks = [SOURCES_INSTRUCTION]
    for number, source in enumerate(sources, start=1):
        where = source.filename if source.page is None else f"{source.filename}, page {source.page}"
        blocks.append(f"[{number}] ({where})\n{source.text}")
    return "\n\n".join(blocks)


def _largest_fitting(limit: int, fits: Callable[[int], bool]) -> int:
    """The largest `k` in `0..limit` with `fits(k)`, for `fits` true up to some `k`, then false."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def build_prompt(
    model: ChatModel,
    *,
    system_prompt: str | None,
    history: Sequence[ChatMessage],
    question: str,
    max_tokens: int,
    sources: Sequence[Source] = (),
) -> Prompt:
    """The system prompt, the best sources that fit, then the newest history that fits.

    The system prompt and the question are never dropped: if they do not fit with room for
    `max_tokens`, the turn is refused. Sources go before history: lower-scored sources are
    dropped first, then the oldest messages.
    """
    budget = model.context_window - max_tokens
    asked = ChatMessage(role="user", content=question)
    ranked = sorted(sources, key=lambda source: source.score, reverse=True)

    def system(source_count: int) -> list[ChatMessage]:
        parts = [system_prompt] if system_prompt else []
        if source_count:
            parts.append(format_sources(ranked[:source_count]))
        return [ChatMessage(role="system", content="\n\n".join(parts))] if parts else []

    def fits(messages: list[ChatMessage]) -> bool:
        return model.count_tokens(messages) <= budget

    if not fits([*system(0), asked]):
        raise PromptTooLong(
            f"the system prompt and the message need more than the {budget} tokens the model's "
            f"context window of {model.context_window} leaves after max_tokens={max_tokens}; "
            "send a shorter message or ask for fewer tokens"
        )
    source_count = _largest_fitting(len(ranked), lambda k: fits([*system(k), asked]))
    head = system(source_count)
    kept = _largest_fitting(
        len(history), lambda k: fits([*head, *history[len(history) - k :], asked])
    )
    messages = [*head, *history[len(history) - kept :], asked]
    return Prompt(
        messages=messages,
        sources=ranked[:source_count],
        prompt_tokens=model.count_tokens(messages),
    )
