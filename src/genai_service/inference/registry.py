"""Model names -> providers, with fallback chains across providers of one name."""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import TypeVar

from loguru import logger

from genai_service.inference.base import (
    RETRYABLE_ERRORS,
    ChatChunk,
    ChatMessage,
    ChatModel,
    ChatRequest,
    ChatResult,
    EmbeddingModel,
    ModelNotFound,
    ModelNotReady,
    ProviderError,
)
from genai_service.inference.embeddings import LocalEmbeddingModel, RemoteEmbeddingModel
from genai_service.inference.openai_compatible.chat_model import OpenAICompatibleChatModel
from genai_service.kit.async_iterators import close_iterator
from genai_service.kit.errors import AppError
from genai_service.settings import InferenceSettings, ProviderSettings

T = TypeVar("T")
M = TypeVar("M", ChatModel, EmbeddingModel)


async def _first_answer(name: str, providers: Sequence[M], call: Callable[[M], Awaitable[T]]) -> T:
    """`call` on each provider in order until one answers; only retryable errors move on."""
    error: AppError = ModelNotReady(f"model {name!r} has no provider")
    for index, provider in enumerate(providers):
        try:
            if not provider.ready:
                raise ModelNotReady(f"model {name!r}: provider {index} is not ready")
            return await call(provider)
        except RETRYABLE_ERRORS as exc:
            _log_fallback(name, index, len(providers), exc)
            error = exc
    raise error


def _log_fallback(name: str, index: int, count: int, exc: AppError) -> None:
    nxt = "trying the next" if index + 1 < count else "no provider left"
    logger.warning("model {!r}: provider {} failed ({}), {}", name, index, exc.detail, nxt)


class FallbackChatModel:
    """Several providers behind one name, tried in order on connection errors, timeouts, 5xx
    and models that are not ready.

    `stream` never moves on once a chunk was yielded: the caller may have sent it already.
    `complete` may, since nothing left the server. Token counting and the context window are
    the first provider's: the name is sized for it, and a fallback whose window is smaller
    refuses a prompt that does not fit with its own error.
    """

    def __init__(self, name: str, providers: Sequence[ChatModel]) -> None:
        if not providers:
            raise ValueError(f"model {name!r} has no provider")
        self.name = name
        self.providers = tuple(providers)

    @property
    def context_window(self) -> int:
        return self.providers[0].context_window

    @property
    def ready(self) -> bool:
        return any(provider.ready for provider in self.providers)

    async def start(self) -> None:
        await asyncio.gather(*(provider.start() for provider in self.providers))

    async def close(self) -> None:
        await asyncio.gather(*(provider.close() for provider in self.providers))

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self.providers[0].count_tokens(messages)

    async def count_prompt_tokens(self, request: ChatRequest) -> int:
        return await self.providers[0].count_prompt_tokens(request)

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await _first_answer(self.name, self.providers, lambda p: p.complete(request))

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        error: AppError = ModelNotReady(f"model {self.name!r} has no provider")
        for index, provider in enumerate(self.providers):
            yielded = False
            try:
                if not provider.ready:
                    raise ModelNotReady(f"model {self.name!r}: provider {index} is not ready")
                chunks = provider.stream(request)
                try:
                    async for chunk in chunks:
                        yielded = True
                        yield chunk
                finally:
                    await close_iterator(chunks)
                return
            except RETRYABLE_ERRORS as exc:
                if yielded:
                    raise
                _log_fallback(self.name, index, len(self.providers), exc)
                error = exc
        raise error


class FallbackEmbeddingModel:
    """Several embedding providers behind one name, tried in order like `FallbackChatModel`.

    Their vectors share one index, so every provider must have the same dimension: a provider
    that answers with another one is an error, never a silent fallback.
    """

    def __init__(self, name: str, providers: Sequence[EmbeddingModel]) -> None:
        if not providers:
            raise ValueError(f"model {name!r} has no provider")
        self.name = name
        self.providers = tuple(providers)

    @property
    def dimension(self) -> int:
        for provider in self.providers:
            try:
                return provider.dimension
            except ModelNotReady:
                continue
        raise ModelNotReady(f"model {self.name!r}: no provider knows its dimension yet")

    @property
    def max_input_tokens(self) -> int:
        """The smallest window of the chain's loaded providers: a text that fits it fits
        whichever of them answers."""
        windows: list[int] = []
        for provider in self.providers:
            try:
                windows.append(provider.max_input_tokens)
            except ModelNotReady:
                continue
        if not windows:
            raise ModelNotReady(f"model {self.name!r}: no provider is loaded")
        return min(windows)

    @property
    def ready(self) -> bool:
        return any(provider.ready for provider in self.providers)

    async def start(self) -> None:
        await asyncio.gather(*(provider.start() for provider in self.providers))

    async def close(self) -> None:
        await asyncio.gather(*(provider.close() for provider in self.providers))

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """The first answering provider's counts, capped at the chain's window plus one."""
        counts = await _first_answer(self.name, self.providers, lambda p: p.count_tokens(texts))
        cap = self.max_input_tokens + 1
        return [min(count, cap) for count in counts]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = await _first_answer(self.name, self.providers, lambda p: p.embed(texts))
        try:
            expected = self.dimension
        except ModelNotReady:
            return vectors
        if any(len(vector) != expected for vector in vectors):
            raise ProviderError(
                f"model {self.name!r}: a provider answered with vectors that are not "
                f"{expected}-dimensional like the others"
            )
        return vectors


def _leaves(models: Iterable[ChatModel | EmbeddingModel]) -> list[ChatModel | EmbeddingModel]:
    """The real providers, each once, even when several names (or chains) share one."""
    unique: dict[int, ChatModel | EmbeddingModel] = {}
    for model in models:
        parts = (
            model.providers
            if isinstance(model, FallbackChatModel | FallbackEmbeddingModel)
            else (model,)
        )
        for part in parts:
            unique.setdefault(id(part), part)
    return list(unique.values())


class ModelRegistry:
    """Chat and embedding models by name, started and closed together.

    Build it from settings with `from_settings`, or hand it ready-made models (tests, embedding
    applications). Without an explicit default, the first name of each kind is the default.
    """

    def __init__(
        self,
        *,
        chat: Mapping[str, ChatModel] | None = None,
        embeddings: Mapping[str, EmbeddingModel] | None = None,
        default_chat: str | None = None,
        default_embedding: str | None = None,
    ) -> None:
        self._chat = dict(chat or {})
        self._embeddings = dict(embeddings or {})
        self._default_chat = _default(default_chat, self._chat, "chat")
        self._default_embedding = _default(default_embedding, self._embeddings, "embedding")
        self._starting: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: InferenceSettings) -> ModelRegistry:
        """Providers for every configured name. Every "local" entry shares one instance, and the
        local engines are imported only when one is configured (the `local` extra)."""
        local_chat: ChatModel | None = None
        local_embedding: LocalEmbeddingModel | None = None

        def chat_provider(name: str, provider: ProviderSettings) -> ChatModel:
            nonlocal local_chat
            if provider.kind == "openai_compatible":
                return OpenAICompatibleChatModel(name, provider)
            if local_chat is None:
                from genai_service.inference.local.chat_model import LocalChatModel

                local_chat = LocalChatModel(settings.local_chat)
            return local_chat

        def embedding_provider(name: str, provider: ProviderSettings) -> EmbeddingModel:
            nonlocal local_embedding
            if provider.kind == "openai_compatible":
                return RemoteEmbeddingModel(name, provider)
            if local_embedding is None:
                local_embedding = LocalEmbeddingModel(settings.local_embeddings)
            return local_embedding

        chat: dict[str, ChatModel] = {}
        for name, providers in settings.chat_models.items():
            chain = [chat_provider(name, p) for p in providers]
            chat[name] = chain[0] if len(chain) == 1 else FallbackChatModel(name, chain)
        embeddings: dict[str, EmbeddingModel] = {}
        for name, providers in settings.embedding_models.items():
            links = [embedding_provider(name, p) for p in providers]
            embeddings[name] = links[0] if len(links) == 1 else FallbackEmbeddingModel(name, links)
        explicit = settings.model_fields_set
        return cls(
            chat=chat,
            embeddings=embeddings,
            default_chat=_configured_default(
                settings.default_chat_model, chat, explicit="default_chat_model" in explicit
            ),
            default_embedding=_configured_default(
                settings.default_embedding_model,
                embeddings,
                explicit="default_embedding_model" in explicit,
            ),
        )

    @property
    def default_chat_name(self) -> str:
        if self._default_chat is None:
            raise ModelNotFound("no chat model is configured")
        return self._default_chat

    @property
    def default_embedding_name(self) -> str:
        if self._default_embedding is None:
            raise ModelNotFound("no embedding model is configured")
        return self._default_embedding

    def chat_names(self) -> list[str]:
        return list(self._chat)

    def embedding_names(self) -> list[str]:
        return list(self._embeddings)

    def chat(self, name: str | None = None) -> ChatModel:
        key = self.default_chat_name if name is None else name
        model = self._chat.get(key)
        if model is None:
            raise ModelNotFound(_unknown(key, "chat", self._chat, self._embeddings))
        return model

    def embedding(self, name: str | None = None) -> EmbeddingModel:
        key = self.default_embedding_name if name is None else name
        model = self._embeddings.get(key)
        if model is None:
            raise ModelNotFound(_unknown(key, "embedding", self._embeddings, self._chat))
        return model

    def providers(self) -> list[ChatModel | EmbeddingModel]:
        """Every real provider once, even when several names (or chains) share one."""
        return _leaves(model for _, model in self._named_models())

    def readiness(self) -> dict[str, bool]:
        """Whether each name can answer now (a chain: any of its providers)."""
        ready: dict[str, bool] = {}
        for name, model in self._named_models():
            ready[name] = ready.get(name, True) and model.ready
        return ready

    async def start(self) -> None:
        """Start every provider once, concurrently; concurrent callers share one start-up.

        A provider that fails does not stop the others: every failure is logged, and then raised
        together in an `ExceptionGroup`. Calling `start` again retries.
        """
        task = self._starting
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._starting = asyncio.ensure_future(self._start_all())
        await asyncio.shield(task)

    async def _start_all(self) -> None:
        leaves = self.providers()
        results = await asyncio.gather(*(m.start() for m in leaves), return_exceptions=True)
        errors: list[Exception] = []
        for model, result in zip(leaves, results, strict=True):
            if isinstance(result, Exception):
                names = self._names_of(model)
                logger.opt(exception=result).error("model {} failed to start", ", ".join(names))
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
        if errors:
            raise ExceptionGroup("models failed to start", errors)

    async def close(self) -> None:
        """Stop a start-up still running, then close every provider once."""
        task, self._starting = self._starting, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        leaves = self.providers()
        results = await asyncio.gather(*(m.close() for m in leaves), return_exceptions=True)
        for model, result in zip(leaves, results, strict=True):
            if isinstance(result, BaseException):
                names = ", ".join(self._names_of(model))
                logger.opt(exception=result).error("model {} failed to close", names)

    def _names_of(self, leaf: ChatModel | EmbeddingModel) -> list[str]:
        return [
            name
            for name, model in self._named_models()
            if any(part is leaf for part in _leaves([model]))
        ]

    def _named_models(self) -> list[tuple[str, ChatModel | EmbeddingModel]]:
        named: list[tuple[str, ChatModel | EmbeddingModel]] = [*self._chat.items()]
        named.extend(self._embeddings.items())
        return named


def _configured_default(name: str, models: Mapping[str, object], *, explicit: bool) -> str | None:
    """A default the user set must exist; the built-in one only applies while it is configured."""
    return name if explicit or name in models else None


def _default(name: str | None, models: Mapping[str, object], kind: str) -> str | None:
    if name is None:
        return next(iter(models), None)
    if name not in models:
        known = ", ".join(models) or "none"
        raise ValueError(f"the default {kind} model {name!r} is not configured (known: {known})")
    return name


def _unknown(
    name: str, kind: str, models: Mapping[str, object], others: Mapping[str, object]
) -> str:
    if name in others:
        return f"model {name!r} is not {'a chat' if kind == 'chat' else 'an embedding'} model"
    known = ", ".join(models) or "none"
    return f"model {name!r} does not exist; {kind} models: {known}"
