"""The embedded llama.cpp chat model, on the real SmolLM2 GGUF: batching, cancellation, sampling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from genai_service.inference.base import (
    ChatChunk,
    ChatMessage,
    ChatModel,
    ChatRequest,
    GenerationTimeout,
    ModelNotReady,
    ModelOverloaded,
    PromptTooLong,
    SamplingParams,
)
from genai_service.inference.local.chat_model import LocalChatModel
from genai_service.settings import LocalChatSettings
from tests.polling import wait_until

pytestmark = pytest.mark.integration

LONG_STORY = "Write a long story about a dragon who learns to fly."


def ask(
    text: str,
    *,
    max_tokens: int = 256,
    temperature: float = 0.7,
    seed: int | None = None,
    stop: tuple[str, ...] = (),
) -> ChatRequest:
    sampling = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop)
    return ChatRequest([ChatMessage("user", text)], sampling)


async def drain(chunks: AsyncIterator[ChatChunk]) -> list[ChatChunk]:
    return [chunk async for chunk in chunks]


def text_of(chunks: list[ChatChunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


async def started_model(**settings: object) -> LocalChatModel:
    # One llama.cpp thread: with two on two cores, ggml's spinning thread barrier makes run times
    # swing 5x whenever anything else wants the CPU. Batching does not depend on it.
    chat_model = LocalChatModel(LocalChatSettings(n_ctx=256, n_threads=1, **settings))
    await chat_model.start()
    return chat_model


@pytest.fixture(scope="module")
async def model() -> AsyncIterator[LocalChatModel]:
    # A small n_batch, so that long prompts are prefilled in several chunks.
    chat_model = await started_model(n_seq_max=4, n_batch=64, max_queue=8)
    yield chat_model
    await chat_model.close()


@pytest.fixture(scope="module")
async def single_slot_model() -> AsyncIterator[LocalChatModel]:
    chat_model = await started_model(n_seq_max=1, max_queue=1)
    yield chat_model
    await chat_model.close()


async def test_not_ready_until_started() -> None:
    chat_model: ChatModel = LocalChatModel(LocalChatSettings())

    assert not chat_model.ready
    with pytest.raises(ModelNotReady):
        chat_model.count_tokens([ChatMessage("user", "hi")])
    with pytest.raises(ModelNotReady):
        await chat_model.complete(ask("hi"))


async def test_reply_reports_its_usage(model: LocalChatModel) -> None:
    request = ask("What is the capital of France?", max_tokens=40, temperature=0)

    result = await model.complete(request)
    counts = await asyncio.gather(
        *(asyncio.to_thread(model.count_tokens, request.messages) for _ in range(8))
    )

    assert model.ready
    assert model.context_window == 256
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert set(counts) == {result.usage.prompt_tokens}
    assert 0 < result.usage.completion_tokens <= 40


async def test_a_request_joins_a_running_batch(model: LocalChatModel) -> None:
    long_request = ask(LONG_STORY, max_tokens=60, temperature=0)
    short_request = ask("What is the capital of France?", max_tokens=16, temperature=0)
    long_alone = await model.complete(long_request)
    short_alone = await model.complete(short_request)

    first = model.stream(long_request)
    first_chunks = [await anext(first) for _ in range(5)]
    steps_before_join = model.stats.decode_steps
    second = model.stream(short_request)
    second_chunks = [await anext(second)]
    active_after_join = model.stats.active
    first_rest, second_rest = await asyncio.gather(drain(first), drain(second))

    assert active_after_join == 2
    assert first_rest[-1].finish_reason == "length"
    assert text_of(first_chunks + first_rest) == long_alone.text
    assert text_of(second_chunks + second_rest) == short_alone.text
    tokens_after_join = long_alone.usage.completion_tokens - 5 + short_alone.usage.completion_tokens
    assert model.stats.decode_steps - steps_before_join < tokens_after_join


@pytest.mark.parametrize("temperature", [0.0, 0.9])
async def test_seeded_reply_is_the_same_alone_and_beside_others(
    model: LocalChatModel, temperature: float
) -> None:
    request = ask("Describe a walk in a forest.", max_tokens=24, temperature=temperature, seed=7)
    alone = await model.complete(request)

    others = [
        model.stream(ask(prompt, max_tokens=24, temperature=0.9, seed=index))
        for index, prompt in enumerate(["Explain rain.", LONG_STORY, "Name three colours."])
    ]
    for other in others:
        await anext(other)
    beside_others, *_ = await asyncio.gather(
        model.complete(request), *(drain(other) for other in others)
    )

    assert beside_others == alone


async def test_a_disconnected_reply_matches_the_full_one(model: LocalChatModel) -> None:
    request = ask(LONG_STORY, max_tokens=40, temperature=0.8, seed=11)
    full = await model.complete(request)

    chunks = model.stream(request)
    received = ""
    while len(received) < 30:
        received += (await anext(chunks)).text
    await chunks.aclose()
    await wait_until(lambda: model.stats.active == 0)
    again = await model.complete(request)

    assert full.text.startswith(received)
    assert again == full


async def test_cancelling_a_stream_frees_its_slot(single_slot_model: LocalChatModel) -> None:
    first = single_slot_model.stream(ask(LONG_STORY, max_tokens=400))
    await anext(first)
    waiting = asyncio.create_task(single_slot_model.complete(ask("Say hi.", max_tokens=8)))
    await wait_until(lambda: single_slot_model.stats.queued == 1)

    await first.aclose()
    generated_at_cancel = single_slot_model.stats.generated_tokens
    result = await asyncio.wait_for(waiting, timeout=20)

    assert result.finish_reason in ("stop", "length")
    stats = single_slot_model.stats
    assert (stats.active, stats.queued) == (0, 0)
    # The cancelled sequence stopped at once: at most one more step went to it.
    assert stats.generated_tokens - generated_at_cancel <= result.usage.completion_tokens + 1


async def test_a_full_queue_turns_requests_away(single_slot_model: LocalChatModel) -> None:
    first = single_slot_model.stream(ask(LONG_STORY, max_tokens=400))
    await anext(first)
    waiting = asyncio.create_task(single_slot_model.complete(ask("Say hi.", max_tokens=8)))
    await wait_until(lambda: single_slot_model.stats.queued == 1)

    with pytest.raises(ModelOverloaded) as overloaded:
        await single_slot_model.complete(ask("One more?"))

    await first.aclose()
    await asyncio.wait_for(waiting, timeout=20)
    assert overloaded.value.status_code == 503
    assert int(overloaded.value.headers["Retry-After"]) >= 1


async def test_a_prompt_longer_than_the_window_is_rejected(model: LocalChatModel) -> None:
    messages = [ChatMessage("user", "hello " * 300)]
    prompt_tokens = model.count_tokens(messages)

    with pytest.raises(PromptTooLong) as too_long:
        await model.complete(ChatRequest(messages))

    assert prompt_tokens > 256
    assert str(prompt_tokens) in too_long.value.detail
    assert "256" in too_long.value.detail


async def test_the_reply_ends_when_the_window_is_full(model: LocalChatModel) -> None:
    messages = [ChatMessage("user", "Repeat: " + "apple " * 190)]
    prompt_tokens = model.count_tokens(messages)

    result = await model.complete(
        ChatRequest(messages, SamplingParams(max_tokens=200, temperature=0))
    )

    assert 210 < prompt_tokens < 250
    assert result.usage.prompt_tokens == prompt_tokens
    assert result.usage.total_tokens <= 256
    if result.finish_reason == "length":
        assert result.usage.total_tokens == 256


async def test_chunked_prefill_gives_the_same_reply(
    model: LocalChatModel, single_slot_model: LocalChatModel
) -> None:
    request = ask(
        "Summarise this: " + "The cat sat on the mat. " * 14, max_tokens=12, temperature=0
    )

    chunked = await model.complete(request)  # n_batch 64
    whole = await single_slot_model.complete(request)  # n_batch 512

    assert chunked.usage.prompt_tokens > 2 * 64
    assert chunked == whole


async def test_max_tokens_ends_the_reply_with_length(model: LocalChatModel) -> None:
    result = await model.complete(ask(LONG_STORY, max_tokens=5, temperature=0))

    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 5


async def test_stop_sequence_ends_the_reply_without_leaking(model: LocalChatModel) -> None:
    full = await model.complete(ask(LONG_STORY, max_tokens=60, temperature=0))
    middle = len(full.text) // 2
    stop = full.text[middle : middle + 6]

    chunks = await drain(model.stream(ask(LONG_STORY, max_tokens=60, temperature=0, stop=(stop,))))

    assert text_of(chunks) == full.text[: full.text.index(stop)]
    assert chunks[-1].finish_reason == "stop"
    assert all(stop not in chunk.text for chunk in chunks)


async def test_characters_spanning_tokens_are_streamed_whole(model: LocalChatModel) -> None:
    chunks = await drain(
        model.stream(ask("Use emojis to describe a party 🎉", max_tokens=30, temperature=0))
    )
    text = text_of(chunks)
    final = chunks[-1]

    assert final.usage is not None
    assert any(ord(character) > 0xFFFF for character in text)
    assert "\ufffd" not in text
    assert all(chunk.text for chunk in chunks[:-1])
    # Fewer text chunks than tokens: some tokens held only part of a character.
    assert len(chunks) - 1 < final.usage.completion_tokens


async def test_the_event_loop_stays_free_and_the_idle_engine_sleeps(
    model: LocalChatModel,
) -> None:
    longest_gap = 0.0
    generating = True

    async def ticker() -> None:
        nonlocal longest_gap
        while generating:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            longest_gap = max(longest_gap, time.perf_counter() - before)

    ticking = asyncio.create_task(ticker())
    await asyncio.gather(
        *(model.complete(ask(LONG_STORY, max_tokens=16, seed=i)) for i in range(4))
    )
    generating = False
    await ticking
    cpu_before = time.process_time()
    await asyncio.sleep(0.5)
    idle_cpu = time.process_time() - cpu_before

    assert longest_gap < 0.2
    assert idle_cpu < 0.1


async def test_a_reply_that_takes_too_long_times_out_and_leaves() -> None:
    chat_model = await started_model(n_seq_max=1, request_timeout=0.3)
    try:
        with pytest.raises(GenerationTimeout):
            await chat_model.complete(ask(LONG_STORY, max_tokens=400))
        await wait_until(lambda: chat_model.stats.active == 0, within=2.0)
    finally:
        await chat_model.close()


async def test_close_cancels_running_and_waiting_requests() -> None:
    chat_model = await started_model(n_seq_max=1, max_queue=1)
    running = chat_model.stream(ask(LONG_STORY, max_tokens=400))
    await anext(running)
    waiting = asyncio.create_task(chat_model.complete(ask("Say hi.")))
    await wait_until(lambda: chat_model.stats.queued == 1)

    await chat_model.close()

    assert (await drain(running))[-1].finish_reason == "cancelled"
    assert (await waiting).finish_reason == "cancelled"
    assert not chat_model.ready
    with pytest.raises(ModelNotReady):
        await chat_model.complete(ask("Still there?"))
