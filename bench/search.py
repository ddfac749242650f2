"""Benchmark: `POST /api/search` latency (p50/p99) over 10k and 100k indexed chunks.

The corpus is synthetic: random unit vectors written straight into the embedded Qdrant store of
a fresh data dir (owned by the anonymous user), then a real server answers sequential searches;
each request embeds its query with all-MiniLM-L6-v2 and searches the owner's chunks.

Run: `python -m bench.search`.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from bench.http_load import percentile
from genai_service.models.user import ANONYMOUS_USER_ID
from genai_service.retrieval.vector_store import ChunkPoint, QdrantVectorStore
from genai_service.settings import Settings
from tests.live_server import LiveServer

DIMENSION = 384
WRITE_BATCH = 1000
QUERIES = int(os.environ.get("BENCH_SEARCH_QUERIES", "200"))
SIZES = tuple(int(size) for size in os.environ.get("BENCH_SEARCH_SIZES", "10000,100000").split(","))


def unit_vectors(count: int, seed: int) -> list[list[float]]:
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    result: list[list[float]] = vectors.tolist()
    return result


async def build_corpus(data_dir: Path, size: int) -> None:
    settings = Settings(_env_file=None, data_dir=data_dir)
    store = QdrantVectorStore.from_settings(settings)
    # One large synthetic document: searches filter by owner and visibility, not by document,
    # and marking it searchable is then one pass over the store.
    document = uuid.uuid4()
    try:
        for offset in range(0, size, WRITE_BATCH):
            vectors = unit_vectors(min(WRITE_BATCH, size - offset), seed=offset)
            batch = []
            for index, vector in enumerate(vectors, start=offset):
                text = f"Synthetic chunk {index} about rivers, budgets and harbours."
                batch.append(
                    ChunkPoint(
                        owner_id=ANONYMOUS_USER_ID,
                        document_id=document,
                        chunk_index=index,
                        page=None,
                        start=index * 100,
                        end=index * 100 + len(text),
                        filename="synthetic.txt",
                        text=text,
                        vector=vector,
                    )
                )
            await store.upsert(batch)
        await store.mark_searchable(ANONYMOUS_USER_ID, document)
        assert await store.count() == size
    finally:
        await store.close()


def search_latencies_ms(base_url: str) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for n in range(10):  # warm-up
            client.post("/api/search", json={"query": f"warm up {n}"}).raise_for_status()
        for n in range(QUERIES):
            started = time.perf_counter()
            response = client.post(
                "/api/search", json={"query": f"question {n} about a river or a budget", "k": 5}
            )
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return latencies


def main() -> None:
    for size in SIZES:
        with tempfile.TemporaryDirectory(prefix="genai-bench-search-") as root:
            data_dir = Path(root) / "data"
            started = time.perf_counter()
            asyncio.run(build_corpus(data_dir, size))
            built_s = time.perf_counter() - started
            server = LiveServer(data_dir, env={"GENAI_LOG_LEVEL": "WARNING"})
            server.start()
            try:
                latencies = search_latencies_ms(server.base_url)
            finally:
                server.stop()
        label = f"{size // 1000}k"
        print(f"search_{label}_corpus_build_s {built_s:.1f}")
        print(f"search_{label}_p50_ms {percentile(latencies, 50):.1f}")
        print(f"search_{label}_p99_ms {percentile(latencies, 99):.1f}")


if __name__ == "__main__":
    main()
