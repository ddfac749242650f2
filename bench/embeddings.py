"""Benchmark 3: 256 concurrent single-text `/v1/embeddings` requests, beside one `encode` call.

Run: `python -m bench.embeddings`.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.embeddings_bare import bare_encode_texts_per_s
from bench.http_load import genai_server

REQUESTS = 256


def texts() -> list[str]:
    return [
        f"Sentence number {i} about topic {i % 17} for the embedding benchmark."
        for i in range(REQUESTS)
    ]


async def _concurrent_texts_per_s(base_url: str) -> float:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def one(text: str) -> None:
            response = await client.post("/v1/embeddings", json={"input": text})
            response.raise_for_status()

        await asyncio.gather(*(one(t) for t in texts()[:16]))  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(one(t) for t in texts()))
        return REQUESTS / (time.perf_counter() - started)


def main() -> None:
    with genai_server() as server:
        ours = asyncio.run(_concurrent_texts_per_s(server.base_url))
    bare = bare_encode_texts_per_s(texts())
    print(f"embeddings_http_256_concurrent_texts_per_s {ours:.1f}")
    print(f"embeddings_bare_encode_256_texts_per_s {bare:.1f}")
    print(f"embeddings_http_over_bare {ours / bare:.2f}")


if __name__ == "__main__":
    main()
