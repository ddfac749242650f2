"""The official `openai` client against a live genai-service with the real embedded models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from genai_service.settings import DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL
from tests.live_server import LiveServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(Path(tmp_path_factory.mktemp("live")) / "data")
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="anonymous", max_retries=0)


def test_models(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL} <= ids


def test_chat_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        temperature=0,
        seed=7,
    )
    text = completion.choices[0].message.content
    assert text
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 24
    again = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        temperature=0,
        seed=7,
    )
    assert again.choices[0].message.content == text


def test_streaming_matches_non_streaming(client: openai.OpenAI) -> None:
    request = {
        "model": DEFAULT_CHAT_MODEL,
        "messages": [{"role": "user", "content": "Name three fruits."}],
        "max_tokens": 32,
        "temperature": 0,
        "seed": 3,
    }
    whole = client.chat.completions.create(**request)  # type: ignore[call-overload]
    pieces: list[str] = []
    usage = None
    stream = client.chat.completions.create(
        **request, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == whole.choices[0].message.content
    assert usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_embeddings(client: openai.OpenAI) -> None:
    result = client.embeddings.create(
        model=DEFAULT_EMBEDDING_MODEL, input=["a cat sat on the mat", "a kitten on a rug"]
    )
    assert len(result.data) == 2
    assert all(len(item.embedding) == 384 for item in result.data)
    first, second = (item.embedding for item in result.data)
    similarity = sum(a * b for a, b in zip(first, second, strict=True))
    assert similarity > 0.5


def test_a_long_embedding_input_is_refused_unless_truncation_is_asked_for(
    client: openai.OpenAI,
) -> None:
    long = "lighthouse keepers climb the tower " * 100
    with pytest.raises(openai.BadRequestError, match="longer than the 256 tokens") as refused:
        client.embeddings.create(model=DEFAULT_EMBEDDING_MODEL, input=long)
    assert refused.value.param == "input"
    result = client.embeddings.create(
        model=DEFAULT_EMBEDDING_MODEL, input=long, extra_body={"truncate": True}
    )
    assert len(result.data[0].embedding) == 384
    assert result.usage.prompt_tokens == 256


def test_unknown_model_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="gpt-nonexistent"):
        client.chat.completions.create(
            model="gpt-nonexistent", messages=[{"role": "user", "content": "hi"}]
        )


def test_invalid_parameters_raise_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=DEFAULT_CHAT_MODEL,
            messages=[{"role": "user", "content": "hi"}],
            temperature=5,
        )


def test_prompt_longer_than_the_context_is_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="context"):
        client.chat.completions.create(
            model=DEFAULT_CHAT_MODEL,
            messages=[{"role": "user", "content": "word " * 5000}],
        )
