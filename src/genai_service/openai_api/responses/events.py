"""The server-sent events of a streamed `/v1/responses` request, as OpenAI's SDKs parse them.

Every event carries its `type` (also sent as the SSE `event:` name) and a `sequence_number`
counting from 0 over the stream.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from genai_service.openai_api.responses.objects import OutputItem, OutputTextPart, ResponseRead

LifecycleType = Literal[
    "response.created",
    "response.in_progress",
    "response.completed",
    "response.incomplete",
    "response.failed",
]


class LifecycleEvent(BaseModel):
    type: LifecycleType
    sequence_number: int
    response: ResponseRead


class OutputItemEvent(BaseModel):
    type: Literal["response.output_item.added", "response.output_item.done"]
    sequence_number: int
    output_index: int
    item: OutputItem


class ContentPartEvent(BaseModel):
    type: Literal["response.content_part.added", "response.content_part.done"]
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int = 0
    part: OutputTextPart


class DeltaTopLogprob(BaseModel):
    token: str
    logprob: float


class DeltaLogprob(BaseModel):
    token: str
    logprob: float
    top_logprobs: list[DeltaTopLogprob]


class TextDeltaEvent(BaseModel):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int = 0
    delta: str
    logprobs: list[DeltaLogprob]


class TextDoneEvent(BaseModel):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int = 0
    text: str
    logprobs: list[DeltaLogprob]


class ArgumentsDeltaEvent(BaseModel):
    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(BaseModel):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    sequence_number: int
    item_id: str
    output_index: int
    name: str
    arguments: str


StreamEvent = (
    LifecycleEvent
    | OutputItemEvent
    | ContentPartEvent
    | TextDeltaEvent
    | TextDoneEvent
    | ArgumentsDeltaEvent
    | ArgumentsDoneEvent
)
