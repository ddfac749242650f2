"""A local reply on its way out: text passed on as it comes, or held to be parsed into tool
calls, and checked against the request's output format when it ends."""

from __future__ import annotations

from collections.abc import Sequence

from genai_service.inference.base import (
    ChatChunk,
    ChatRequest,
    FinishReason,
    TokenLogprob,
    ToolCallDelta,
    Usage,
)
from genai_service.inference.local import tool_calls
from genai_service.inference.structured_output import check_json_reply, check_tool_calls


class ReplyChecker:
    def __init__(self, request: ChatRequest, *, buffered: bool) -> None:
        self._request = request
        self._buffered = buffered
        self._parts: list[str] = []
        self._held_logprobs: list[TokenLogprob] = []

    def add(self, text: str, logprobs: Sequence[TokenLogprob], tokens: int) -> ChatChunk:
        """The chunk to send now for this text: while a tool reply is held, one with only the
        count of tokens generated (what a reply cut short has used)."""
        self._parts.append(text)
        if self._buffered:
            self._held_logprobs.extend(logprobs)
            return ChatChunk(text="", tokens=tokens)
        return ChatChunk(text=text, logprobs=tuple(logprobs), tokens=tokens)

    def finish(self, reason: FinishReason, usage: Usage) -> list[ChatChunk]:
        """The last chunks; `InvalidStructuredOutput` if a complete reply breaks its format."""
        text = "".join(self._parts)
        complete = reason == "stop"
        chunks: list[ChatChunk] = []
        answer: str | None = text
        if self._buffered:
            content, calls = tool_calls.parse_reply(text) if complete else (text, ())
            answer = None if calls else content
            if calls:
                check_tool_calls(calls, tool_calls.offered_tools(self._request))
                deltas = tuple(
                    ToolCallDelta(index, call.id, call.name, call.arguments)
                    for index, call in enumerate(calls)
                )
                chunks.append(ChatChunk("", tool_calls=deltas, logprobs=self._logprobs()))
                reason = "tool_calls"
            elif content or self._held_logprobs:
                chunks.append(ChatChunk(content, logprobs=self._logprobs()))
        if complete and answer is not None and self._request.response_format is not None:
            check_json_reply(answer, self._request.response_format)
        chunks.append(ChatChunk("", finish_reason=reason, usage=usage))
        return chunks

    def _logprobs(self) -> tuple[TokenLogprob, ...]:
        held, self._held_logprobs = tuple(self._held_logprobs), []
        return held
