"""Upstream stream chunks (chat and legacy completions) as our chunks."""

from __future__ import annotations

from collections.abc import Sequence

from openai.types.chat import ChatCompletionTokenLogprob
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.completion_choice import Logprobs

from genai_service.inference.base import (
    ChatChunk,
    FinishReason,
    TokenLogprob,
    ToolCallDelta,
    TopLogprob,
)


def finish_reason_of(reason: str) -> FinishReason:
    if reason == "length":
        return "length"
    if reason in ("tool_calls", "function_call"):
        return "tool_calls"
    return "stop"  # stop, content_filter: the reply ended, complete


def chat_logprobs(content: Sequence[ChatCompletionTokenLogprob] | None) -> tuple[TokenLogprob, ...]:
    return tuple(
        TokenLogprob(
            token=entry.token,
            bytes=bytes(entry.bytes or entry.token.encode()),
            logprob=entry.logprob,
            top=tuple(
                TopLogprob(top.token, bytes(top.bytes or top.token.encode()), top.logprob)
                for top in entry.top_logprobs
            ),
        )
        for entry in content or ()
    )


def legacy_logprobs(logprobs: Logprobs | None) -> tuple[TokenLogprob, ...]:
    """`/v1/completions` logprobs (parallel lists, top alternatives as dicts) as ours."""
    if logprobs is None or not logprobs.tokens or not logprobs.token_logprobs:
        return ()
    tops = logprobs.top_logprobs or [{} for _ in logprobs.tokens]
    return tuple(
        TokenLogprob(
            token=token,
            bytes=token.encode(),
            logprob=logprob,
            top=tuple(TopLogprob(t, t.encode(), lp) for t, lp in (top or {}).items()),
        )
        for token, logprob, top in zip(logprobs.tokens, logprobs.token_logprobs, tops, strict=False)
    )


def piece_of(choice: ChunkChoice) -> ChatChunk | None:
    """What one upstream choice delta carries: text, tool-call pieces, logprobs."""
    delta = choice.delta
    tool_calls = tuple(
        ToolCallDelta(
            index=call.index,
            id=call.id,
            name=call.function.name if call.function else None,
            arguments=(call.function.arguments or "") if call.function else "",
        )
        for call in delta.tool_calls or ()
    )
    logprobs = chat_logprobs(choice.logprobs.content if choice.logprobs else None)
    if not (delta.content or tool_calls or logprobs):
        return None
    return ChatChunk(text=delta.content or "", tool_calls=tool_calls, logprobs=logprobs)
