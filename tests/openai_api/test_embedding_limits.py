"""`/v1/embeddings` limits: 2,048 inputs, the model's window per input (or `truncate`), a token
limit per request; each refusal a 400 in OpenAI's error body naming the limit and `input`.
`usage` counts the model's own tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from transformers import AutoTokenizer

from genai_service.app import create_app
from genai_service.inference.embeddings import LocalEmbeddingModel, default_model_path
from genai_service.inference.registry import ModelRegistry
from genai_service.runtime import runtime_of
from genai_service.settings import LocalEmbeddingSettings
from tests.conftest import FAKE_EMBEDDING_MODEL, client_for, make_settings
from tests.fakes import FakeEmbeddingModel

WINDOW = 256
SPECIALS = FakeEmbeddingModel.SPECIAL_TOKENS


def words(count: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{index}" for index in range(count))


def fake_model(app: FastAPI) -> FakeEmbeddingModel:
    model = runtime_of(app).models.embedding(FAKE_EMBEDDING_MODEL)
    assert isinstance(model, FakeEmbeddingModel)
    return model


async def embed(client: httpx.AsyncClient, value: Any, **extra: Any) -> httpx.Response:
    body = {"model": FAKE_EMBEDDING_MODEL, "input": value, **extra}
    return await client.post("/v1/embeddings", json=body)


def refusal(response: httpx.Response) -> dict[str, Any]:
    """The OpenAI error of a 400 about `input`."""
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "input"
    return error


async def test_usage_counts_the_models_tokens(client: httpx.AsyncClient) -> None:
    response = await embed(client, ["Hello, world!", "one"])
    assert response.status_code == 200, response.text
    # Hello , world ! and one, each text with its two special tokens.
    assert response.json()["usage"] == {"prompt_tokens": 4 + 1 + 2 * SPECIALS, "total_tokens": 9}


async def test_at_most_2048_inputs(client: httpx.AsyncClient, app: FastAPI) -> None:
    accepted = await embed(client, ["x"] * 2048)
    assert accepted.status_code == 200, accepted.text
    assert len(accepted.json()["data"]) == 2048
    calls = len(fake_model(app).calls)
    error = refusal(await embed(client, ["x"] * 2049))
    assert "at most 2048 inputs" in error["message"]
    assert "2049" in error["message"]
    assert len(fake_model(app).calls) == calls


async def test_an_input_longer_than_the_window_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    fits = await embed(client, words(WINDOW - SPECIALS))
    assert fits.status_code == 200, fits.text
    assert fits.json()["usage"]["prompt_tokens"] == WINDOW
    calls = len(fake_model(app).calls)
    error = refusal(await embed(client, words(WINDOW - SPECIALS + 1)))
    assert error["code"] == "context_length_exceeded"
    assert error["message"].startswith("The input is longer than the 256 tokens")
    assert '"truncate": true' in error["message"]
    listed = refusal(await embed(client, ["short", words(300), words(5000)]))
    assert listed["message"].startswith("Input 1 (and 1 more) is longer than the 256 tokens")
    assert len(fake_model(app).calls) == calls


async def test_truncate_embeds_what_the_model_reads(client: httpx.AsyncClient) -> None:
    long = words(1000)
    response = await embed(client, ["short", long], truncate=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["usage"]["prompt_tokens"] == (1 + SPECIALS) + WINDOW
    cut = await embed(client, words(WINDOW - SPECIALS))
    assert body["data"][1]["embedding"] == cut.json()["data"][0]["embedding"]


async def test_the_token_limit_of_a_request(client: httpx.AsyncClient, app: FastAPI) -> None:
    runtime_of(app).settings.inference.max_embedding_request_tokens = 50
    five_tokens = "a b c"
    assert (await embed(client, [five_tokens] * 10)).status_code == 200
    calls = len(fake_model(app).calls)
    error = refusal(await embed(client, [five_tokens] * 11))
    assert error["code"] == "max_tokens_per_request"
    assert error["message"] == (
        "The inputs take 55 tokens; a request may embed at most 50. Send them in smaller requests."
    )
    truncated = refusal(await embed(client, [words(1000)], truncate=True))
    assert "take 256 tokens" in truncated["message"]
    assert len(fake_model(app).calls) == calls


@pytest.fixture
async def minilm_app(tmp_path: Path, database_url: str) -> AsyncIterator[FastAPI]:
    models = ModelRegistry(
        embeddings={"all-minilm-l6-v2": LocalEmbeddingModel(LocalEmbeddingSettings())}
    )
    application = create_app(make_settings(tmp_path, database_url), models=models)
    async with LifespanManager(application, startup_timeout=120, shutdown_timeout=60):
        await runtime_of(application).models.start()
        yield application


@pytest.mark.integration
async def test_minilm_refuses_more_than_256_tokens_and_counts_its_own(
    minilm_app: FastAPI,
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    fits = "Tokenisation splits unbelievably long words, like antidisestablishmentarianism. " * 10
    long = fits * 2
    assert (
        len(tokenizer(fits)["input_ids"]) <= 256 < len(tokenizer(long, verbose=False)["input_ids"])
    )
    async with client_for(minilm_app) as client:
        response = await client.post("/v1/embeddings", json={"input": [fits, "Hello, world!"]})
        assert response.status_code == 200, response.text
        expected = sum(len(tokenizer(text)["input_ids"]) for text in (fits, "Hello, world!"))
        assert response.json()["usage"]["prompt_tokens"] == expected
        refused = await client.post("/v1/embeddings", json={"input": ["Hi", long]})
        error = refusal(refused)
        assert error["message"].startswith("Input 1 is longer than the 256 tokens")
        cut = await client.post("/v1/embeddings", json={"input": long, "truncate": True})
        assert cut.status_code == 200, cut.text
        assert cut.json()["usage"]["prompt_tokens"] == 256


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"frobnicate": 1}, "frobnicate"),
        ({"dimensions": 3}, "dimensions"),
        ({"encoding_format": "int8"}, "encoding_format"),
    ],
)
async def test_what_cannot_be_honoured_is_refused_by_name(
    client: httpx.AsyncClient, extra: dict[str, Any], param: str
) -> None:
    response = await embed(client, "hello", **extra)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_the_models_own_dimension_and_a_user_are_accepted(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    dimension = fake_model(app).dimension
    response = await embed(client, "hello", dimensions=dimension, user="user-7")
    assert response.status_code == 200, response.text
    assert len(response.json()["data"][0]["embedding"]) == dimension


async def test_token_ids_for_a_model_that_takes_text_only_are_refused(
    client: httpx.AsyncClient,
) -> None:
    error = refusal(await embed(client, [[101, 7592, 102]]))
    assert "text only" in error["message"]


async def test_minilm_embeds_its_own_token_ids_as_their_text(minilm_app: FastAPI) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    texts = ["a lighthouse on a rocky coast", "the keeper climbs the stairs at night"]
    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    async with client_for(minilm_app) as client:
        by_text = (await client.post("/v1/embeddings", json={"input": texts})).json()
        by_ids = await client.post("/v1/embeddings", json={"input": ids})
        assert by_ids.status_code == 200, by_ids.text
        single = await client.post("/v1/embeddings", json={"input": ids[0]})
        assert single.status_code == 200, single.text
        unknown = await client.post("/v1/embeddings", json={"input": [[1, 2, 10**6]]})
    pairs = [
        *zip(by_text["data"], by_ids.json()["data"], strict=True),
        (single.json()["data"][0], by_ids.json()["data"][0]),
    ]
    for first, second in pairs:  # the same vectors, up to padding in a batch
        similarity = sum(
            a * b for a, b in zip(first["embedding"], second["embedding"], strict=True)
        )
        assert similarity > 0.9999
    assert by_ids.json()["usage"] == by_text["usage"]
    assert "vocabulary" in refusal(unknown)["message"]
