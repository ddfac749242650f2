"""`ResponseWriter`: chunk sequences the fake model does not produce (text between calls,
fragments of several calls, logprobs), turned into output items and stream events."""

from __future__ import annotations

from genai_service.inference.base import ChatChunk, TokenLogprob, ToolCallDelta, Usage
from genai_service.openai_api.responses.objects import FunctionCall, OutputMessage, ResponseRead
from genai_service.openai_api.responses.schemas import TextConfig, TextFormat
from genai_service.openai_api.responses.writer import ResponseWriter

USAGE = Usage(prompt_tokens=3, completion_tokens=5)


def draft() -> ResponseRead:
    return ResponseRead(
        id="resp_test",
        created_at=0,
        status="in_progress",
        model="m",
        instructions=None,
        output=[],
        previous_response_id=None,
        store=False,
        max_output_tokens=16,
        temperature=1.0,
        top_p=1.0,
        top_logprobs=None,
        truncation="disabled",
        text=TextConfig(format=TextFormat(type="text")),
        tools=[],
        tool_choice="auto",
        parallel_tool_calls=True,
        metadata={},
        user=None,
        safety_identifier=None,
    )


def run(chunks: list[ChatChunk], *, logprobs: bool = False) -> tuple[list[str], ResponseRead]:
    writer = ResponseWriter(draft(), logprobs=logprobs)
    events = writer.opening()
    for chunk in chunks:
        events += writer.add(chunk)
    closing, final = writer.finish("tool_calls", USAGE)
    events += [*closing, writer.ended(final)]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    return [event.type for event in events], final


def test_text_a_call_then_text_give_three_items_in_order() -> None:
    types, final = run(
        [
            ChatChunk("Let me look."),
            ChatChunk("", tool_calls=(ToolCallDelta(0, "call_a", "f", '{"x": 1}'),)),
            ChatChunk("Done."),
        ]
    )
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        # The message is done when the call begins.
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    first, call, last = final.output
    assert isinstance(first, OutputMessage)
    assert isinstance(call, FunctionCall)
    assert isinstance(last, OutputMessage)
    assert (first.content[0].text, last.content[0].text) == ("Let me look.", "Done.")
    assert (call.call_id, call.name, call.arguments) == ("call_a", "f", '{"x": 1}')
    assert {item.status for item in final.output} == {"completed"}


def test_fragments_of_two_calls_are_joined_by_index() -> None:
    _, final = run(
        [
            ChatChunk("", tool_calls=(ToolCallDelta(0, "call_a", "f", '{"x"'),)),
            ChatChunk("", tool_calls=(ToolCallDelta(1, "call_b", "g", "{}"),)),
            ChatChunk("", tool_calls=(ToolCallDelta(0, arguments=": 1}"),)),
        ]
    )
    calls = [
        (item.call_id, item.name, item.arguments)
        for item in final.output
        if isinstance(item, FunctionCall)
    ]
    assert calls == [("call_a", "f", '{"x": 1}'), ("call_b", "g", "{}")]


def test_logprobs_of_a_tool_calling_reply_open_no_message() -> None:
    held = (TokenLogprob(token="{", bytes=b"{", logprob=-0.1),)
    delta = ToolCallDelta(0, "call_a", "f", "{}")
    _, final = run([ChatChunk("", tool_calls=(delta,), logprobs=held)], logprobs=True)
    assert [item.type for item in final.output] == ["function_call"]


def test_text_logprobs_are_kept_when_asked() -> None:
    entry = TokenLogprob(token="Hi", bytes=b"Hi", logprob=-0.5)
    _, final = run([ChatChunk("Hi", logprobs=(entry,))], logprobs=True)
    [message] = final.output
    assert isinstance(message, OutputMessage)
    logprobs = message.content[0].logprobs
    assert logprobs is not None
    assert [(lp.token, lp.bytes, lp.logprob) for lp in logprobs] == [("Hi", [72, 105], -0.5)]
    _, plain = run([ChatChunk("Hi", logprobs=(entry,))], logprobs=False)
    assert isinstance(plain.output[0], OutputMessage)
    assert plain.output[0].content[0].logprobs is None


def test_a_reply_cancelled_by_shutdown_fails() -> None:
    writer = ResponseWriter(draft(), logprobs=False)
    writer.add(ChatChunk("partial"))
    _, final = writer.finish("cancelled", USAGE)
    assert final.status == "failed"
    assert final.error is not None
    assert "shutting down" in final.error.message
    assert writer.ended(final).type == "response.failed"
    assert final.output[0].status == "incomplete"
