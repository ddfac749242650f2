"""Per-sequence sampling on the real SmolLM2: grammars, penalties, logit bias and logprobs, each
for one sequence of the continuous batch, beside others that do not use them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import jsonschema
import pytest

from genai_service.inference.base import (
    ChatMessage,
    ChatRequest,
    ForcedTool,
    JsonOutput,
    SamplingParams,
    Tool,
)
from genai_service.inference.local.chat_model import LocalChatModel
from genai_service.inference.local.job import Failed, GenerationJob
from genai_service.inference.local.json_grammar import UnsupportedSchema
from genai_service.inference.local.sampler import GrammarRejected
from genai_service.kit.errors import BadRequest
from genai_service.settings import LocalChatSettings

pytestmark = pytest.mark.integration

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer"},
        "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 2},
    },
    "required": ["name", "age", "pets"],
}
WEATHER = Tool(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}},
        "required": ["city"],
    },
    description="The weather of a city.",
)


def ask(text: str, **sampling: object) -> ChatRequest:
    settings = {"max_tokens": 60, "temperature": 0.0, **sampling}
    return ChatRequest([ChatMessage("user", text)], SamplingParams(**settings))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def model() -> AsyncIterator[LocalChatModel]:
    chat_model = LocalChatModel(LocalChatSettings(n_ctx=512, n_seq_max=4, n_threads=1))
    await chat_model.start()
    yield chat_model
    await chat_model.close()


async def test_constrained_and_free_sequences_share_decode_steps(model: LocalChatModel) -> None:
    constrained = ChatRequest(
        [ChatMessage("user", "Describe a person.")],
        SamplingParams(max_tokens=80, temperature=0.7, seed=3),
        response_format=JsonOutput(PERSON),
    )
    free = ask("Write a poem about the sea.", max_tokens=60, temperature=0.7, seed=3)
    steps_before = model.stats.decode_steps

    structured, prose = await asyncio.gather(model.complete(constrained), model.complete(free))

    assert structured.finish_reason == "stop"
    jsonschema.validate(json.loads(structured.text), PERSON)
    assert prose.text
    assert not prose.text.lstrip().startswith("{")
    tokens = structured.usage.completion_tokens + prose.usage.completion_tokens
    assert model.stats.decode_steps - steps_before < tokens  # decoded together, not in turn


async def test_a_seeded_constrained_reply_is_reproducible(model: LocalChatModel) -> None:
    request = ChatRequest(
        [ChatMessage("user", "Describe a person.")],
        SamplingParams(max_tokens=80, temperature=0.9, seed=11),
        response_format=JsonOutput(PERSON),
    )
    first, second = await model.complete(request), await model.complete(request)
    assert first.text == second.text


async def test_tool_calls_match_their_tool(model: LocalChatModel) -> None:
    request = ChatRequest(
        [ChatMessage("user", "What is the weather in Oslo?")],
        SamplingParams(max_tokens=60, temperature=0.0),
        tools=(WEATHER,),
        tool_choice=ForcedTool("get_weather"),
        parallel_tool_calls=False,
    )
    result = await model.complete(request)
    assert result.finish_reason == "tool_calls"
    assert result.text == ""
    (call,) = result.tool_calls
    assert call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), dict(WEATHER.parameters))


async def test_a_stop_sequence_cannot_cut_a_structured_reply(model: LocalChatModel) -> None:
    request = ChatRequest(
        [ChatMessage("user", "Describe a person.")],
        SamplingParams(stop=("}",)),
        response_format=JsonOutput(PERSON),
    )
    with pytest.raises(BadRequest) as refused:
        await model.complete(request)
    assert refused.value.param == "stop"


async def test_unsupported_schemas_are_refused_before_decoding(model: LocalChatModel) -> None:
    steps = model.stats.decode_steps
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    with pytest.raises(UnsupportedSchema) as refused:
        await model.complete(
            ChatRequest([ChatMessage("user", "x")], response_format=JsonOutput(schema))
        )
    assert "uniqueItems" in refused.value.detail
    assert model.stats.decode_steps == steps


async def test_a_grammar_that_does_not_compile_fails_only_its_request(
    model: LocalChatModel,
) -> None:
    engine = model._require_engine()
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[object] = asyncio.Queue()

    def sink(event: object) -> bool:
        loop.call_soon_threadsafe(events.put_nowait, event)
        return True

    job = GenerationJob([1, 2, 3], SamplingParams(), 8, sink, grammar="root ::= (")  # type: ignore[arg-type]
    engine.submit(job)
    event = await asyncio.wait_for(events.get(), 30)
    assert isinstance(event, Failed)
    assert isinstance(event.error, GrammarRejected)
    assert model.stats.active == 0
    assert (await model.complete(ask("Say hi.", max_tokens=4))).text  # the engine goes on


async def test_logit_bias_forbids_and_forces_tokens(model: LocalChatModel) -> None:
    plain = await model.complete(ask("What is the capital of France?", max_tokens=12))
    first_piece = plain.logprobs  # not asked for: none
    assert first_piece == ()
    with_logprobs = await model.complete(
        ask("What is the capital of France?", max_tokens=12, logprobs=0)
    )
    first_token = with_logprobs.logprobs[0].token
    tokenizer = model._require_tokenizer()
    (token_id,) = tokenizer.tokens_of(first_token)

    banned = await model.complete(
        ask(
            "What is the capital of France?",
            max_tokens=12,
            logit_bias=((token_id, -100.0),),
            logprobs=0,
        )
    )
    assert banned.logprobs[0].token != first_token
    (forced_id,) = tokenizer.tokens_of(" banana")
    forced = await model.complete(
        ask("What is the capital of France?", max_tokens=3, logit_bias=((forced_id, 100.0),))
    )
    assert forced.text == " banana banana banana"


async def test_penalties_reduce_repetition(model: LocalChatModel) -> None:
    prompt = "Repeat the word cat many times: cat cat cat cat cat cat"
    plain = await model.complete(ask(prompt, max_tokens=40))
    penalised = await model.complete(
        ask(prompt, max_tokens=40, frequency_penalty=2.0, presence_penalty=2.0)
    )
    assert plain.text.lower().count("cat") > penalised.text.lower().count("cat")


async def test_streamed_logprobs_follow_the_text(model: LocalChatModel) -> None:
    chunks = [
        chunk async for chunk in model.stream(ask("Name three colours.", max_tokens=20, logprobs=2))
    ]
    text = "".join(chunk.text for chunk in chunks)
    entries = [entry for chunk in chunks for entry in chunk.logprobs]
    assert "".join(entry.token for entry in entries) == text
    assert all(len(entry.top) == 2 and entry.logprob <= 0 for entry in entries)
    for chunk in chunks:  # every chunk carries the logprobs of exactly its own text
        assert "".join(entry.token for entry in chunk.logprobs) == chunk.text


def conversation(turns: int) -> list[ChatMessage]:
    messages = [ChatMessage("system", "You are a helpful assistant who answers briefly.")]
    for turn in range(turns):
        messages.append(ChatMessage("user", f"Tell me fact number {turn} about the sea."))
        messages.append(ChatMessage("assistant", f"Fact {turn}: the sea is large and salty."))
    messages.append(ChatMessage("user", "And one more fact, please."))
    return messages


async def test_a_next_turn_reuses_the_cached_prefix_and_answers_the_same(
    model: LocalChatModel,
) -> None:
    fresh = LocalChatModel(
        LocalChatSettings(n_ctx=512, n_seq_max=4, n_threads=1, reuse_prefixes=False)
    )
    await fresh.start()
    try:
        sampling = SamplingParams(max_tokens=16, temperature=0.8, seed=21)
        earlier = ChatRequest(conversation(3), sampling)
        reply = await model.complete(earlier)
        later = ChatRequest(
            [
                *earlier.messages,
                ChatMessage("assistant", reply.text),
                ChatMessage("user", "Thank you. And another?"),
            ],
            sampling,
        )
        before = model.stats
        reused_reply = await model.complete(later)
        after = model.stats
        plain_reply = await fresh.complete(later)
        assert fresh.stats.reused_tokens == 0
    finally:
        await fresh.close()
    # The whole earlier prompt, and most of the reply's tokens, were not computed again.
    assert after.reused_tokens - before.reused_tokens >= model.count_tokens(earlier.messages)
    assert reused_reply == plain_reply


def next_turn(request: ChatRequest, reply: str) -> ChatRequest:
    return ChatRequest(
        [
            *request.messages,
            ChatMessage("assistant", reply),
            ChatMessage("user", "Thank you. And another?"),
        ],
        request.sampling,
    )


async def test_caches_moved_and_copied_between_slots_answer_as_reused_in_place() -> None:
    """Two conversations on two engines of three slots, where every request decodes in slot 0.
    On one, each conversation's next turn follows it and reuses its cache in place. On the
    other, the conversations take turns: each request moves the other conversation's cache out
    of slot 0, and each next turn has its own copied back into slot 0 from where it was kept.
    The copies carry the cache exactly (its cells too), so the replies are the same."""
    settings = LocalChatSettings(n_ctx=512, n_seq_max=3, n_threads=1)
    sampling = SamplingParams(max_tokens=16, temperature=0.0)
    rivers = ChatRequest([ChatMessage("user", "Name a river.")], sampling)
    sea = ChatRequest(conversation(2), sampling)  # another system prompt: nothing shared
    in_place, taking_turns = LocalChatModel(settings), LocalChatModel(settings)
    await in_place.start()
    await taking_turns.start()
    try:
        expected: list[str] = []
        for request in (rivers, sea):
            reply = await in_place.complete(request)
            expected.append((await in_place.complete(next_turn(request, reply.text))).text)
        replies = [await taking_turns.complete(request) for request in (rivers, sea)]
        for request, reply, same in zip((rivers, sea), replies, expected, strict=True):
            before = taking_turns.stats.reused_tokens
            later = await taking_turns.complete(next_turn(request, reply.text))
            reused = taking_turns.stats.reused_tokens - before
            assert reused >= taking_turns.count_tokens(request.messages)
            assert later.text == same
    finally:
        await in_place.close()
        await taking_turns.close()


async def test_n_copies_of_one_prompt_compute_it_once(model: LocalChatModel) -> None:
    messages = conversation(4)
    requests = [
        ChatRequest(messages, SamplingParams(max_tokens=12, temperature=0.9, seed=seed))
        for seed in (1, 2, 3)
    ]
    before = model.stats
    results = await asyncio.gather(*(model.complete(request) for request in requests))
    after = model.stats
    prompt = model.count_tokens(messages)
    # The first computes the prompt (or reuses a slot); the others copy it.
    assert after.reused_tokens - before.reused_tokens >= 2 * (prompt - 1)
    alone = [await model.complete(request) for request in requests]
    assert results == alone
