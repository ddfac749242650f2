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


class ToolCallHeaders:
    """A streamed tool call's id and name, passed on once.

    In OpenAI's format the first delta of a call carries its id and name, and later ones only
    pieces of its arguments. llama-cpp-python's server repeats the id and the name in every
    delta: joined as deltas are, the name would be the name many times over. A repeat of what
    a call already has is dropped.
    """

    def __init__(self) -> None:
        self._known: dict[int, tuple[str | None, str | None]] = {}

    def first_only(self, delta: ToolCallDelta) -> ToolCallDelta | None:
        """`delta` without the id and name its call already has; `None` when nothing is left."""
        known = self._known.get(delta.index)
        if known is None:
            self._known[delta.index] = (delta.id, delta.name)
            return delta
        known_id, known_name = known
        call_id = None if delta.id == known_id else delta.id
        name = None if delta.name == known_name else delta.name
        self._known[delta.index] = (known_id or call_id, known_name or name)
        if not (call_id or name or delta.arguments):
            return None
        return ToolCallDelta(delta.index, call_id, name, delta.arguments)


def piece_of(choice: ChunkChoice, headers: ToolCallHeaders) -> ChatChunk | None:
    """What one upstream choice delta carries: text, tool-call pieces, logprobs."""
    delta = choice.delta
    received = (
        ToolCallDelta(
            index=call.index,
            id=call.id,
            name=call.function.name if call.function else None,
            arguments=(call.function.arguments or "") if call.function else "",
        )
        for call in delta.tool_calls or ()
    )
    tool_calls = tuple(
        call for call in (headers.first_only(call) for call in received) if call is not None
    )
    logprobs = chat_logprobs(choice.logprobs.content if choice.logprobs else None)
    if not (delta.content or tool_calls or logprobs):
        return None
    return ChatChunk(text=delta.content or "", tool_calls=tool_calls, logprobs=logprobs)
