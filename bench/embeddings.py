"""Benchmark 3: 256 concurrent single-text `/v1/embeddings` requests, beside one `encode` call.

The requests go over 256 keep-alive connections from a light HTTP/1.1 client (bench/
keepalive_client.py), so the figure is the server's, not the client library's: httpx alone
spends about as much CPU per request as the server does, on the same two cores.
Run: `python -m bench.embeddings`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from bench.embeddings_bare import bare_encoder
from bench.http_load import genai_server, load_average
from bench.keepalive_client import KeepAliveClient

REQUESTS = 256
ROUNDS = 4
DIMENSION = 384


def texts() -> list[str]:
    return [
        f"Sentence number {i} about topic {i % 17} for the embedding benchmark."
        for i in range(REQUESTS)
    ]


async def _rounds(base_url: str, bare: Callable[[Sequence[str]], float]) -> tuple[float, float]:
    """Best texts/s over HTTP and of the bare `encode`, measured in alternating rounds.

    The machine is shared: alternating puts both sides in the same stretches of background load.
    """
    async with KeepAliveClient(base_url, connections=REQUESTS) as client:

        async def one(text: str) -> None:
            reply = await client.post_json("/v1/embeddings", {"input": text})
            if len(reply["data"][0]["embedding"]) != DIMENSION:
                raise RuntimeError(f"unexpected reply: {str(reply)[:200]}")

        await asyncio.gather(*(one(t) for t in texts()))  # warm-up: every connection once
        best_http = best_bare = 0.0
        for _ in range(ROUNDS):
            started = time.perf_counter()
            await asyncio.gather(*(one(t) for t in texts()))
            best_http = max(best_http, REQUESTS / (time.perf_counter() - started))
            best_bare = max(best_bare, bare(texts()))  # the server is idle meanwhile
        return best_http, best_bare


def main() -> None:
    print(f"load_average_before {load_average()}")
    encoder = bare_encoder()
    with genai_server() as server:
        ours, bare = asyncio.run(_rounds(server.base_url, encoder))
    print(f"embeddings_http_256_concurrent_texts_per_s {ours:.1f}")
    print(f"embeddings_bare_encode_256_texts_per_s {bare:.1f}")
    print(f"embeddings_http_over_bare {ours / bare:.2f}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
