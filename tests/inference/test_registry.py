from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator

import pytest

from genai_service.inference.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ModelNotFound,
    ModelNotReady,
    ModelOverloaded,
    PromptTooLong,
    ProviderError,
)
from genai_service.inference.embeddings import LocalEmbeddingModel, RemoteEmbeddingModel
from genai_service.inference.openai_compatible.chat_model import OpenAICompatibleChatModel
from genai_service.inference.registry import (
    FallbackChatModel,
    FallbackEmbeddingModel,
    ModelRegistry,
)
from genai_service.kit.errors import AppError
from genai_service.settings import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    InferenceSettings,
    ProviderSettings,
)
from tests.fakes import FailingChatModel, FakeEmbeddingModel, ScriptedChatModel

REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="hello there")])
ANSWER = "You said: hello there"


@pytest.fixture
def closed_port() -> Iterator[str]:
    """A loopback port bound but not listening: connecting is refused (and nobody takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def remote(base_url: str) -> ProviderSettings:
    return ProviderSettings(kind="openai_compatible", base_url=base_url, max_retries=0, timeout=5)


async def drain(chunks: AsyncIterator[ChatChunk], *, into: list[str]) -> None:
    async for chunk in chunks:
        into.append(chunk.text)


async def started(*models: ScriptedChatModel | FakeEmbeddingModel) -> None:
    for model in models:
        await model.start()


async def test_unknown_names_are_model_not_found_naming_the_known_ones() -> None:
    registry = ModelRegistry(
        chat={"alpha": ScriptedChatModel(), "beta": ScriptedChatModel()},
        embeddings={"embedder": FakeEmbeddingModel()},
    )
    with pytest.raises(ModelNotFound) as unknown:
        registry.chat("gpt-17")
    assert "gpt-17" in unknown.value.detail
    assert "alpha, beta" in unknown.value.detail
    with pytest.raises(ModelNotFound, match="not a chat model"):
        registry.chat("embedder")
    with pytest.raises(ModelNotFound, match="embedding models: embedder"):
        registry.embedding("nope")
    assert ModelRegistry().chat_names() == []
    with pytest.raises(ModelNotFound, match="no chat model"):
        ModelRegistry().chat(None)


async def test_none_means_the_default_model() -> None:
    first, second = ScriptedChatModel(), ScriptedChatModel()
    embedder = FakeEmbeddingModel()
    registry = ModelRegistry(chat={"a": first, "b": second}, embeddings={"e": embedder})
    assert registry.chat(None) is first  # no explicit default: the first name
    assert registry.embedding(None) is embedder
    explicit = ModelRegistry(chat={"a": first, "b": second}, default_chat="b")
    assert explicit.chat(None) is second
    assert explicit.default_chat_name == "b"
    with pytest.raises(ValueError, match="'c'"):
        ModelRegistry(chat={"a": first}, default_chat="c")


async def test_fallback_to_the_next_provider_on_provider_error() -> None:
    broken = FailingChatModel(ProviderError("upstream 502"))
    backup = ScriptedChatModel()
    await started(broken, backup)
    chain = FallbackChatModel("assistant", [broken, backup])
    assert (await chain.complete(REQUEST)).text == ANSWER
    streamed = "".join([chunk.text async for chunk in chain.stream(REQUEST)])
    assert streamed == ANSWER
    assert len(broken.requests) == 2  # it was tried first, both times
    assert len(backup.requests) == 2


async def test_fallback_from_a_remote_server_that_refuses_connections(closed_port: str) -> None:
    down = OpenAICompatibleChatModel("assistant", remote(closed_port))
    backup = ScriptedChatModel()
    registry = ModelRegistry(chat={"assistant": FallbackChatModel("assistant", [down, backup])})
    await registry.start()
    try:
        assert (await registry.chat("assistant").complete(REQUEST)).text == ANSWER
        chunks = [chunk async for chunk in registry.chat(None).stream(REQUEST)]
        assert "".join(c.text for c in chunks) == ANSWER
        assert chunks[-1].finish_reason == "stop"
    finally:
        await registry.close()


async def test_no_fallback_once_a_streamed_chunk_was_yielded() -> None:
    dies_midway = FailingChatModel(ProviderError("connection reset"), after_chunks=1)
    backup = ScriptedChatModel()
    await started(dies_midway, backup)
    chain = FallbackChatModel("assistant", [dies_midway, backup])
    received: list[str] = []
    with pytest.raises(ProviderError, match="connection reset"):
        await drain(chain.stream(REQUEST), into=received)
    assert received == ["partial"]
    assert backup.requests == []


async def test_complete_may_fall_back_after_partial_output_nothing_was_sent() -> None:
    dies_midway = FailingChatModel(ProviderError("connection reset"), after_chunks=2)
    backup = ScriptedChatModel()
    await started(dies_midway, backup)
    chain = FallbackChatModel("assistant", [dies_midway, backup])
    assert (await chain.complete(REQUEST)).text == ANSWER


@pytest.mark.parametrize(
    "error",
    [
        PromptTooLong("too long"),
        ModelOverloaded("queue full", retry_after=1),
        ModelNotFound("unknown upstream"),
    ],
)
async def test_client_errors_do_not_fall_back(error: AppError) -> None:
    first, backup = FailingChatModel(error), ScriptedChatModel()
    await started(first, backup)
    chain = FallbackChatModel("assistant", [first, backup])
    with pytest.raises(type(error)):
        await chain.complete(REQUEST)
    with pytest.raises(type(error)):
        [chunk async for chunk in chain.stream(REQUEST)]
    assert backup.requests == []


async def test_a_provider_that_is_not_ready_is_skipped_and_the_last_error_wins() -> None:
    not_loaded, backup = ScriptedChatModel(), ScriptedChatModel()
    await started(backup)
    chain = FallbackChatModel("assistant", [not_loaded, backup])
    assert chain.ready
    assert (await chain.complete(REQUEST)).text == ANSWER
    assert not_loaded.requests == []
    all_down = FallbackChatModel(
        "assistant", [ScriptedChatModel(), FailingChatModel(ProviderError("last one"))]
    )
    await all_down.providers[1].start()
    with pytest.raises(ProviderError, match="last one"):
        await all_down.complete(REQUEST)
    await all_down.providers[1].close()
    assert not all_down.ready
    with pytest.raises(ModelNotReady):
        [chunk async for chunk in all_down.stream(REQUEST)]


async def test_embedding_fallback_and_dimension_check(closed_port: str) -> None:
    down = RemoteEmbeddingModel("embedder", remote(closed_port))
    backup = FakeEmbeddingModel(dimension=16)
    chain = FallbackEmbeddingModel("embedder", [down, backup])
    await chain.start()
    try:
        assert chain.dimension == 16  # the remote's is unknown while it is down
        vectors = await chain.embed(["alpha", "beta"])
        assert vectors == [backup.vector("alpha"), backup.vector("beta")]
    finally:
        await chain.close()
    other_size, answering = FakeEmbeddingModel(dimension=8), FakeEmbeddingModel(dimension=16)
    await answering.start()
    with pytest.raises(ProviderError, match="8-dimensional"):
        await FallbackEmbeddingModel("embedder", [other_size, answering]).embed(["alpha"])


async def test_an_embedding_chain_reads_what_every_provider_reads() -> None:
    """Its window is the smallest of its providers'; the first provider counts, capped there."""
    wide, narrow = FakeEmbeddingModel(max_input_tokens=512), FakeEmbeddingModel(max_input_tokens=8)
    chain = FallbackEmbeddingModel("embedder", [wide, narrow])
    await chain.start()
    try:
        assert chain.max_input_tokens == 8
        assert await chain.count_tokens(["one two three", " ".join(["word"] * 20)]) == [5, 9]
    finally:
        await chain.close()


async def test_readiness_has_a_key_per_name_and_follows_the_models() -> None:
    shared, other = ScriptedChatModel(), ScriptedChatModel()
    embedder = FakeEmbeddingModel()
    registry = ModelRegistry(
        chat={"a": shared, "b": shared, "chain": FallbackChatModel("chain", [other, shared])},
        embeddings={"e": embedder},
    )
    assert registry.readiness() == {"a": False, "b": False, "chain": False, "e": False}
    await asyncio.gather(registry.start(), registry.start())
    assert registry.readiness() == {"a": True, "b": True, "chain": True, "e": True}
    assert (shared.start_calls, other.start_calls) == (1, 1)  # shared: started once
    await other.close()
    assert registry.readiness()["chain"] is True  # one provider of the chain is enough
    await registry.close()
    assert registry.readiness() == {"a": False, "b": False, "chain": False, "e": False}


class BarrierChatModel(ScriptedChatModel):
    """Starts only once every other BarrierChatModel is starting too."""

    def __init__(self, barrier: asyncio.Barrier) -> None:
        super().__init__()
        self.barrier = barrier

    async def start(self) -> None:
        await self.barrier.wait()
        await super().start()


class BrokenStartChatModel(ScriptedChatModel):
    async def start(self) -> None:
        raise FileNotFoundError("no such model file")


async def test_start_runs_every_model_concurrently_and_reports_failures() -> None:
    barrier = asyncio.Barrier(2)
    one, two = BarrierChatModel(barrier), BarrierChatModel(barrier)
    registry = ModelRegistry(chat={"one": one, "two": two})
    async with asyncio.timeout(2):  # one after the other would wait at the barrier forever
        await registry.start()
    assert registry.readiness() == {"one": True, "two": True}

    healthy = ScriptedChatModel()
    partly_broken = ModelRegistry(chat={"broken": BrokenStartChatModel(), "healthy": healthy})
    with pytest.raises(ExceptionGroup) as failed:
        await partly_broken.start()
    assert failed.group_contains(FileNotFoundError)
    assert partly_broken.readiness() == {"broken": False, "healthy": True}


def test_from_settings_shares_one_local_instance_and_builds_chains(closed_port: str) -> None:
    settings = InferenceSettings(
        chat_models={
            "small": [ProviderSettings(kind="local")],
            "also-small": [ProviderSettings(kind="local")],
            "assistant": [remote(closed_port), ProviderSettings(kind="local")],
        },
        embedding_models={
            "minilm": [ProviderSettings(kind="local")],
            "remote-embedder": [remote(closed_port)],
        },
        default_chat_model="assistant",
    )
    registry = ModelRegistry.from_settings(settings)
    assert registry.chat_names() == ["small", "also-small", "assistant"]
    assert registry.embedding_names() == ["minilm", "remote-embedder"]
    assert registry.chat("small") is registry.chat("also-small")
    chain = registry.chat(None)
    assert isinstance(chain, FallbackChatModel)
    assert isinstance(chain.providers[0], OpenAICompatibleChatModel)
    assert chain.providers[1] is registry.chat("small")
    assert isinstance(registry.embedding(None), LocalEmbeddingModel)
    assert isinstance(registry.embedding("remote-embedder"), RemoteEmbeddingModel)


def test_from_settings_defaults(closed_port: str) -> None:
    built_in = ModelRegistry.from_settings(InferenceSettings())
    assert built_in.default_chat_name == DEFAULT_CHAT_MODEL
    assert built_in.default_embedding_name == DEFAULT_EMBEDDING_MODEL
    # The built-in default name does not apply once other models are configured instead ...
    only_remote = InferenceSettings(chat_models={"llama3.2": [remote(closed_port)]})
    assert ModelRegistry.from_settings(only_remote).default_chat_name == "llama3.2"
    # ... but a default the user set must exist.
    wrong = InferenceSettings(
        chat_models={"llama3.2": [remote(closed_port)]}, default_chat_model="gpt-17"
    )
    with pytest.raises(ValueError, match="gpt-17"):
        ModelRegistry.from_settings(wrong)


def test_the_service_imports_and_serves_remote_models_without_the_local_extra() -> None:
    script = textwrap.dedent(
        """
        import sys
        # numpy is not blocked: qdrant-client, a core dependency, requires it.
        for name in ("llama_cpp", "sentence_transformers", "torch"):
            sys.modules[name] = None  # importing it now raises ImportError

        from genai_service.app import create_app
        from genai_service.inference.registry import ModelRegistry
        from genai_service.settings import InferenceSettings, ProviderSettings

        remote = [ProviderSettings(kind="openai_compatible", base_url="http://127.0.0.1:9/v1")]
        registry = ModelRegistry.from_settings(
            InferenceSettings(chat_models={"r": remote}, embedding_models={"e": remote})
        )
        print(registry.chat_names(), registry.embedding_names())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['r'] ['e']"
