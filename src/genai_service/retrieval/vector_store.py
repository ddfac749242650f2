"""The vector store behind retrieval: a small protocol and its Qdrant implementation.

Qdrant runs embedded (local mode, a folder under the data dir) by default, or as a server or
cluster when `GENAI_VECTORS__URL` is set. `qdrant-client` is blocking, so every call runs on a
worker thread: one dedicated thread in local mode (the embedded store is single-threaded), a small
pool for a server.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from loguru import logger
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from genai_service.kit.errors import ServiceUnavailable
from genai_service.retrieval.sources import Source
from genai_service.settings import Settings

T = TypeVar("T")

SERVER_THREADS = 8
UNFILTERED_PROBE_FACTOR = 8
UNFILTERED_PROBE_MINIMUM = 64
READINESS_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class ChunkPoint:
    """One chunk of a document, with its embedding, as stored in the vector store."""

    owner_id: uuid.UUID
    document_id: uuid.UUID
    chunk_index: int
    page: int | None
    start: int
    end: int
    filename: str
    text: str
    vector: Sequence[float]


class VectorStoreError(ServiceUnavailable):
    title = "Vector store unavailable"
    slug = "vector-store-unavailable"


class VectorStore(Protocol):
    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        """Write points; writing a chunk again replaces it (ids are deterministic)."""
        ...

    async def mark_searchable(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> None:
        """Make a fully written document visible to `search`."""
        ...

    async def search(
        self,
        owner_id: uuid.UUID,
        vector: Sequence[float],
        *,
        limit: int,
        score_threshold: float,
        document_ids: Sequence[uuid.UUID] | None = None,
    ) -> list[Source]:
        """The owner's searchable chunks closest to `vector`, best first."""
        ...

    async def delete_document(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> None: ...

    async def count(self, document_id: uuid.UUID | None = None) -> int: ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...


def point_id(document_id: uuid.UUID, chunk_index: int) -> uuid.UUID:
    """The id of a chunk's point: the same on every attempt, so a retried job overwrites."""
    return uuid.uuid5(document_id, str(chunk_index))


class QdrantVectorStore:
    """One collection, created with the embedding dimension the first time a point is written;
    an existing collection is never dropped or recreated. Every search is filtered by owner."""

    def __init__(self, client: QdrantClient, collection: str, *, threads: int) -> None:
        self._client = client
        self._collection = collection
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qdrant")
        self._dimension: int | None = None
        self._collection_lock = asyncio.Lock()
        self.is_server = threads > 1

    @classmethod
    def from_settings(cls, settings: Settings) -> QdrantVectorStore:
        vectors = settings.vectors
        if vectors.url:
            api_key = vectors.api_key.get_secret_value() if vectors.api_key else None
            # No version check at construction: it runs on a thread of its own and only warns,
            # also when the server is merely down at start-up; readiness reports the server.
            client = QdrantClient(
                url=vectors.url,
                api_key=api_key,
                timeout=math.ceil(vectors.timeout),
                check_compatibility=False,
            )
            return cls(client, vectors.collection, threads=SERVER_THREADS)
        path = settings.vectors_path
        path.mkdir(parents=True, exist_ok=True)
        return cls(QdrantClient(path=str(path)), vectors.collection, threads=1)

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function` of the client, on the store's threads. A server that cannot be reached or
        fails, or that refuses the configured API key, is a 503 naming the vector store, as a
        database outage would be, never a 500; any other 4xx is a wrong request and passes on."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(function, *args, **kwargs))
        except ResponseHandlingException as exc:  # the request got no answer
            logger.warning("vector store unreachable: {}", type(exc.source).__name__)
            raise VectorStoreError("The vector store cannot be reached.") from exc
        except UnexpectedResponse as exc:
            status = exc.status_code or 0
            if status in (401, 403):
                logger.warning("vector store refused the API key (status {})", status)
                raise VectorStoreError("The vector store refused the service's API key.") from exc
            if status < 500:
                raise
            logger.warning("vector store failed with status {}", status)
            raise VectorStoreError(f"The vector store failed (status {status}).") from exc

    async def _ensure_collection(self, dimension: int) -> None:
        if self._dimension == dimension:
            return
        async with self._collection_lock:
            existing = await self._existing_dimension()
            if existing is None:
                await self._call(
                    self._client.create_collection,
                    self._collection,
                    vectors_config=models.VectorParams(
                        size=dimension, distance=models.Distance.COSINE
                    ),
                )
                if self.is_server:  # payload indexes only mean something to a server
                    for field in ("owner_id", "document_id"):
                        await self._call(
                            self._client.create_payload_index,
                            self._collection,
                            field_name=field,
                            field_schema=models.PayloadSchemaType.KEYWORD,
                        )
                logger.info("vector collection {!r} created ({} dims)", self._collection, dimension)
            elif existing != dimension:
                raise VectorStoreError(
                    f"the vector collection {self._collection!r} holds {existing}-dimensional "
                    f"vectors but the embedding model makes {dimension}; configure another "
                    "collection name rather than mixing models"
                )
            self._dimension = dimension

    async def _existing_dimension(self) -> int | None:
        if not await self._call(self._client.collection_exists, self._collection):
            return None
        info = await self._call(self._client.get_collection, self._collection)
        params = info.config.params.vectors
        if not isinstance(params, models.VectorParams):
            raise VectorStoreError(f"the vector collection {self._collection!r} is not ours")
        return params.size

    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        if not points:
            return
        await self._ensure_collection(len(points[0].vector))
        structs = [
            models.PointStruct(
                id=str(point_id(p.document_id, p.chunk_index)),
                vector=list(p.vector),
                payload={
                    "owner_id": str(p.owner_id),
                    "document_id": str(p.document_id),
                    "chunk_index": p.chunk_index,
                    "page": p.page,
                    "start": p.start,
                    "end": p.end,
                    "filename": p.filename,
                    "text": p.text,
                    "searchable": False,
                },
            )
            for p in points
        ]
        await self._call(self._client.upsert, self._collection, points=structs, wait=True)

    async def mark_searchable(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> None:
        if not await self._has_collection():
            return
        await self._call(
            self._client.set_payload,
            self._collection,
            payload={"searchable": True},
            points=models.FilterSelector(filter=_document_filter(owner_id, document_id)),
            wait=True,
        )

    async def search(
        self,
        owner_id: uuid.UUID,
        vector: Sequence[float],
        *,
        limit: int,
        score_threshold: float,
        document_ids: Sequence[uuid.UUID] | None = None,
    ) -> list[Source]:
        if not await self._has_collection():
            return []
        wanted = None if document_ids is None else {str(d) for d in document_ids}
        if wanted is not None and not wanted:
            return []
        if not self.is_server:
            probed = await self._probe_unfiltered(
                owner_id, vector, limit=limit, score_threshold=score_threshold, wanted=wanted
            )
            if probed is not None:
                return probed
        must: list[models.Condition] = [
            _equals("owner_id", str(owner_id)),
            models.FieldCondition(key="searchable", match=models.MatchValue(value=True)),
        ]
        if wanted is not None:
            must.append(
                models.FieldCondition(key="document_id", match=models.MatchAny(any=sorted(wanted)))
            )
        response = await self._call(
            self._client.query_points,
            self._collection,
            query=list(vector),
            query_filter=models.Filter(must=must),
            limit=limit,
            score_threshold=score_threshold,
            with_payload=True,
        )
        return [_scored(point) for point in response.points]

    async def _probe_unfiltered(
        self,
        owner_id: uuid.UUID,
        vector: Sequence[float],
        *,
        limit: int,
        score_threshold: float,
        wanted: set[str] | None,
    ) -> list[Source] | None:
        """Local mode evaluates a filter in Python for every point, which is slow on large
        collections; an unfiltered search is one matrix product. So take the best points without
        a filter and keep the owner's: when that yields `limit` of them, or the probe already
        reached the score threshold, they are exactly the filtered answer (anything of the
        owner's scoring higher would have been in the probe). Otherwise `None`: filter properly.
        """
        probe = max(limit * UNFILTERED_PROBE_FACTOR, UNFILTERED_PROBE_MINIMUM)
        response = await self._call(
            self._client.query_points,
            self._collection,
            query=list(vector),
            limit=probe,
            score_threshold=score_threshold,
            with_payload=True,
        )
        kept = [
            point
            for point in response.points
            if _visible_to(point.payload or {}, str(owner_id), wanted)
        ]
        if len(kept) >= limit or len(response.points) < probe:
            return [_scored(point) for point in kept[:limit]]
        return None

    async def delete_document(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> None:
        if not await self._has_collection():
            return
        await self._call(
            self._client.delete,
            self._collection,
            points_selector=models.FilterSelector(filter=_document_filter(owner_id, document_id)),
            wait=True,
        )

    async def count(self, document_id: uuid.UUID | None = None) -> int:
        if not await self._has_collection():
            return 0
        condition = (
            None
            if document_id is None
            else models.Filter(must=[_equals("document_id", str(document_id))])
        )
        result = await self._call(
            self._client.count, self._collection, count_filter=condition, exact=True
        )
        return result.count

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_S):
                await self._call(self._client.get_collections)
        except Exception as exc:  # whatever the failure, the store is not ready
            logger.warning("readiness: vector store check failed: {}", type(exc).__name__)
            return False
        return True

    async def close(self) -> None:
        try:
            await self._call(self._client.close)
        finally:
            self._executor.shutdown(wait=True)

    async def _has_collection(self) -> bool:
        if self._dimension is not None:
            return True
        return bool(await self._call(self._client.collection_exists, self._collection))


def _equals(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _visible_to(payload: dict[str, Any], owner_id: str, wanted: set[str] | None) -> bool:
    return (
        payload.get("owner_id") == owner_id
        and payload.get("searchable") is True
        and (wanted is None or payload.get("document_id") in wanted)
    )


def _document_filter(owner_id: uuid.UUID, document_id: uuid.UUID) -> models.Filter:
    return models.Filter(
        must=[_equals("owner_id", str(owner_id)), _equals("document_id", str(document_id))]
    )


def _scored(point: models.ScoredPoint) -> Source:
    payload = point.payload or {}
    return Source(
        document_id=uuid.UUID(str(payload["document_id"])),
        chunk_index=int(payload["chunk_index"]),
        page=None if payload.get("page") is None else int(payload["page"]),
        start=int(payload["start"]),
        end=int(payload["end"]),
        filename=str(payload["filename"]),
        text=str(payload["text"]),
        score=float(point.score),
    )
