"""From model chunks to a response object, and to the stream events that build it on the way.

One path for both modes: a streamed request sends the events, a plain one drops them and
returns the final object, so both give the same response for the same chunks.

Text opens a `message` item (a new one when a function call came in between); each tool-call
index opens a `function_call` item. A message is done when something else opens; function calls,
whose arguments may still come in fragments, when the reply ends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from genai_service.inference.base import ChatChunk, FinishReason, TokenLogprob, ToolCallDelta, Usage
from genai_service.kit.random_ids import random_hex
from genai_service.openai_api.responses.events import (
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    ContentPartEvent,
    DeltaLogprob,
    DeltaTopLogprob,
    LifecycleEvent,
    LifecycleType,
    OutputItemEvent,
    StreamEvent,
    TextDeltaEvent,
    TextDoneEvent,
)
from genai_service.openai_api.responses.objects import (
    FunctionCall,
    IncompleteDetails,
    ItemStatus,
    OutputMessage,
    OutputTextPart,
    ResponseError,
    ResponseRead,
    ResponseUsage,
    TokenLogprobRead,
    TopLogprobRead,
)


def response_id() -> str:
    return f"resp_{random_hex()}"


def _logprob_read(entry: TokenLogprob) -> TokenLogprobRead:
    return TokenLogprobRead(
        token=entry.token,
        bytes=list(entry.bytes),
        logprob=entry.logprob,
        top_logprobs=[
            TopLogprobRead(token=top.token, bytes=list(top.bytes), logprob=top.logprob)
            for top in entry.top
        ],
    )


def _delta_logprobs(entries: Sequence[TokenLogprob]) -> list[DeltaLogprob]:
    return [
        DeltaLogprob(
            token=entry.token,
            logprob=entry.logprob,
            top_logprobs=[DeltaTopLogprob(token=t.token, logprob=t.logprob) for t in entry.top],
        )
        for entry in entries
    ]


@dataclass
class _MessageDraft:
    id: str = field(default_factory=lambda: f"msg_{random_hex()}")
    parts: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    status: ItemStatus = "in_progress"

    def part(self, *, with_logprobs: bool) -> OutputTextPart:
        logprobs = [_logprob_read(entry) for entry in self.logprobs] if with_logprobs else None
        return OutputTextPart(text="".join(self.parts), logprobs=logprobs)

    def read(self, status: ItemStatus, *, with_logprobs: bool) -> OutputMessage:
        content = [] if status == "in_progress" else [self.part(with_logprobs=with_logprobs)]
        return OutputMessage(id=self.id, status=status, content=content)


@dataclass
class _CallDraft:
    call_id: str
    name: str
    id: str = field(default_factory=lambda: f"fc_{random_hex()}")
    arguments: list[str] = field(default_factory=list)
    status: ItemStatus = "in_progress"

    def read(self, status: ItemStatus) -> FunctionCall:
        arguments = "" if status == "in_progress" else "".join(self.arguments)
        return FunctionCall(
            id=self.id, call_id=self.call_id, name=self.name, arguments=arguments, status=status
        )


class ResponseWriter:
    def __init__(self, draft: ResponseRead, *, logprobs: bool) -> None:
        self._draft = draft
        self._logprobs = logprobs
        self._items: list[_MessageDraft | _CallDraft] = []
        self._calls: dict[int, int] = {}
        """Tool-call index of the model's chunks -> output index."""
        self._sequence = 0

    def _next(self) -> int:
        number, self._sequence = self._sequence, self._sequence + 1
        return number

    def _lifecycle(self, kind: LifecycleType, response: ResponseRead) -> LifecycleEvent:
        return LifecycleEvent(type=kind, sequence_number=self._next(), response=response)

    def opening(self) -> list[StreamEvent]:
        return [
            self._lifecycle("response.created", self._draft),
            self._lifecycle("response.in_progress", self._draft),
        ]

    def add(self, chunk: ChatChunk) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        # The logprobs of a tool-calling reply come with its calls: they belong to no text.
        if chunk.text or (chunk.logprobs and not chunk.tool_calls):
            events += self._text(chunk.text, chunk.logprobs)
        for delta in chunk.tool_calls:
            events += self._call(delta)
        return events

    def _text(self, text: str, logprobs: Sequence[TokenLogprob]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        last = self._items[-1] if self._items else None
        if not isinstance(last, _MessageDraft) or last.status != "in_progress":
            events += self._open_message()
        index = len(self._items) - 1
        message = self._items[index]
        if not isinstance(message, _MessageDraft):
            raise TypeError("the last output item is not the message being written")
        message.parts.append(text)
        message.logprobs.extend(logprobs)
        events.append(
            TextDeltaEvent(
                sequence_number=self._next(),
                item_id=message.id,
                output_index=index,
                delta=text,
                logprobs=_delta_logprobs(logprobs) if self._logprobs else [],
            )
        )
        return events

    def _open_message(self) -> list[StreamEvent]:
        events = self._close_messages("completed")
        message = _MessageDraft()
        self._items.append(message)
        index = len(self._items) - 1
        return [
            *events,
            OutputItemEvent(
                type="response.output_item.added",
                sequence_number=self._next(),
                output_index=index,
                item=message.read("in_progress", with_logprobs=self._logprobs),
            ),
            ContentPartEvent(
                type="response.content_part.added",
                sequence_number=self._next(),
                item_id=message.id,
                output_index=index,
                part=OutputTextPart(text="", logprobs=[] if self._logprobs else None),
            ),
        ]

    def _call(self, delta: ToolCallDelta) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        index = self._calls.get(delta.index)
        if index is None:
            events += self._close_messages("completed")
            call = _CallDraft(
                call_id=delta.id or f"call_{random_hex()[:24]}", name=delta.name or ""
            )
            self._items.append(call)
            index = self._calls[delta.index] = len(self._items) - 1
            events.append(
                OutputItemEvent(
                    type="response.output_item.added",
                    sequence_number=self._next(),
                    output_index=index,
                    item=call.read("in_progress"),
                )
            )
        else:
            known = self._items[index]
            if not isinstance(known, _CallDraft):
                raise TypeError(f"output item {index} is not a function call")
            call = known
            call.name += delta.name or ""
        if delta.arguments:
            call.arguments.append(delta.arguments)
            events.append(
                ArgumentsDeltaEvent(
                    sequence_number=self._next(),
                    item_id=call.id,
                    output_index=index,
                    delta=delta.arguments,
                )
            )
        return events

    def _close_messages(self, status: ItemStatus) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for index, item in enumerate(self._items):
            if isinstance(item, _MessageDraft) and item.status == "in_progress":
                events += self._close_message(index, item, status)
        return events

    def _close_message(
        self, index: int, message: _MessageDraft, status: ItemStatus
    ) -> list[StreamEvent]:
        message.status = status
        part = message.part(with_logprobs=self._logprobs)
        return [
            TextDoneEvent(
                sequence_number=self._next(),
                item_id=message.id,
                output_index=index,
                text=part.text,
                logprobs=_delta_logprobs(message.logprobs) if self._logprobs else [],
            ),
            ContentPartEvent(
                type="response.content_part.done",
                sequence_number=self._next(),
                item_id=message.id,
                output_index=index,
                part=part,
            ),
            OutputItemEvent(
                type="response.output_item.done",
                sequence_number=self._next(),
                output_index=index,
                item=message.read(status, with_logprobs=self._logprobs),
            ),
        ]

    def _close(self, status: ItemStatus) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for index, item in enumerate(self._items):
            if item.status != "in_progress":
                continue
            if isinstance(item, _MessageDraft):
                events += self._close_message(index, item, status)
                continue
            item.status = status
            done = item.read(status)
            events.append(
                ArgumentsDoneEvent(
                    sequence_number=self._next(),
                    item_id=item.id,
                    output_index=index,
                    name=item.name,
                    arguments=done.arguments,
                )
            )
            events.append(
                OutputItemEvent(
                    type="response.output_item.done",
                    sequence_number=self._next(),
                    output_index=index,
                    item=done,
                )
            )
        return events

    def _output(self) -> list[OutputMessage | FunctionCall]:
        """The items as they stand; one still open (a reply that broke off) is incomplete."""
        output: list[OutputMessage | FunctionCall] = []
        for item in self._items:
            status: ItemStatus = "incomplete" if item.status == "in_progress" else item.status
            if isinstance(item, _MessageDraft):
                output.append(item.read(status, with_logprobs=self._logprobs))
            else:
                output.append(item.read(status))
        return output

    def finish(self, reason: FinishReason, usage: Usage) -> tuple[list[StreamEvent], ResponseRead]:
        """The events that close the output, and the final response (not yet announced)."""
        whole = reason in ("stop", "tool_calls")
        status: ItemStatus = "completed" if whole else "incomplete"
        events: list[StreamEvent] = []
        if not self._items:
            events += self._open_message()
        events += self._close(status)
        if reason == "cancelled":
            return events, self.fail("the generation was cancelled: the server is shutting down")
        final = self._draft.model_copy(
            update={
                "status": status,
                "incomplete_details": None
                if whole
                else IncompleteDetails(reason="max_output_tokens"),
                "completed_at": int(time.time()),
                "output": self._output(),
                "usage": ResponseUsage(
                    input_tokens=usage.prompt_tokens,
                    output_tokens=usage.completion_tokens,
                    total_tokens=usage.total_tokens,
                ),
            }
        )
        return events, final

    def fail(self, message: str) -> ResponseRead:
        """The response of a reply that broke off, with what came so far."""
        return self._draft.model_copy(
            update={
                "status": "failed",
                "error": ResponseError(message=message),
                "output": self._output(),
            }
        )

    def ended(self, final: ResponseRead) -> LifecycleEvent:
        """The last event: the final response announced."""
        if final.status == "completed":
            return self._lifecycle("response.completed", final)
        if final.status == "incomplete":
            return self._lifecycle("response.incomplete", final)
        return self._lifecycle("response.failed", final)
