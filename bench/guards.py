"""What the guards cost: `/v1/chat/completions` through genai-service to a fast fake upstream.

Two genai-service processes side by side, alike but for their guards: one with them and limits
set for the caller so that every guard counts (requests and tokens per minute, calls in
flight, tokens per day and month: a budget reservation and a usage-ledger row per call), one
without any guard. Both send their model calls to the same fake OpenAI-compatible
upstream (bench/fake_upstream.py, its own process) on loopback. Rounds alternate between the
two, so a change in the machine's load falls on both: requests/s with 16 requests at once, and
the median latency of requests sent one at a time.
Run: `python -m bench.guards`.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.http_load import load_average, percentile, process
from tests.live_server import free_port

MODEL = "fake-upstream"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
CONCURRENCY = 16
THROUGHPUT_REQUESTS = 1_500
LATENCY_REQUESTS = 300
WARMUP_REQUESTS = 200
ROUNDS = 3
GENEROUS_LIMITS = {
    "REQUESTS_PER_MINUTE": "1000000000",
    "TOKENS_PER_MINUTE": "1000000000000",
    "MAX_CONCURRENT": "100000",
    "TOKENS_PER_DAY": "1000000000000",
    "TOKENS_PER_MONTH": "1000000000000",
}
"""Limits every call is counted against and none reaches."""


@contextmanager
def fake_upstream() -> Iterator[str]:
    port = free_port()
    args = ["-m", "uvicorn", "bench.fake_upstream:app", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log"]
    with process(args, f"http://127.0.0.1:{port}/healthz", os.environ.copy()):
        yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def genai_service(upstream: str, *, guards: bool) -> Iterator[str]:
    provider = {"kind": "openai_compatible", "base_url": upstream, "max_retries": 0}
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="genai-bench-guards-") as root:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_")},
            "GENAI_CONFIG": os.devnull,
            "GENAI_DATA_DIR": str(Path(root) / "data"),
            "GENAI_LOG_LEVEL": "WARNING",
            "GENAI_INFERENCE__CHAT_MODELS": json.dumps({MODEL: [provider]}),
            "GENAI_INFERENCE__EMBEDDING_MODELS": json.dumps({"fake-embeddings": [provider]}),
            "GENAI_INFERENCE__DEFAULT_CHAT_MODEL": MODEL,
            "GENAI_INFERENCE__DEFAULT_EMBEDDING_MODEL": "fake-embeddings",
        }
        if guards:
            for role in ("USER", "ADMIN"):
                for name, value in GENEROUS_LIMITS.items():
                    env[f"GENAI_LIMITS__{role}__{name}"] = value
        args = ["-m", "bench.guards_server", str(port), "on" if guards else "off"]
        base_url = f"http://127.0.0.1:{port}"
        with process(args, f"{base_url}/readyz", env):
            yield base_url


async def _latencies(client: httpx.AsyncClient, requests: int, concurrency: int) -> list[float]:
    """Seconds per request, `concurrency` at a time."""
    latencies: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            response = await client.post("/v1/chat/completions", json=BODY)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def _requests_per_s(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    await _latencies(client, THROUGHPUT_REQUESTS, CONCURRENCY)
    return THROUGHPUT_REQUESTS / (time.perf_counter() - started)


async def _check(client: httpx.AsyncClient, *, guards: bool) -> None:
    """The guarded server counts the call (it names its limits); the other does not."""
    response = await client.post("/v1/chat/completions", json=BODY)
    response.raise_for_status()
    named = "x-ratelimit-limit-requests" in response.headers
    if named != guards:
        raise RuntimeError(f"guards {'on' if guards else 'off'}, but headers: {response.headers}")


async def _measure(off_url: str, on_url: str) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"off_rps": [], "on_rps": [], "off_lat": [], "on_lat": []}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with (
        httpx.AsyncClient(base_url=off_url, timeout=60, limits=limits) as off,
        httpx.AsyncClient(base_url=on_url, timeout=60, limits=limits) as on,
    ):
        await _check(off, guards=False)
        await _check(on, guards=True)
        for client in (off, on):
            await _latencies(client, WARMUP_REQUESTS, CONCURRENCY)
        for _ in range(ROUNDS):
            for name, client in (("off", off), ("on", on)):
                figures[f"{name}_rps"].append(await _requests_per_s(client))
                figures[f"{name}_lat"] += await _latencies(client, LATENCY_REQUESTS, 1)
    return figures


def main() -> None:
    print(f"load_average_before {load_average()}")
    with (
        fake_upstream() as upstream,
        genai_service(upstream, guards=False) as off_url,
        genai_service(upstream, guards=True) as on_url,
    ):
        figures = asyncio.run(_measure(off_url, on_url))
    off_rps = sum(figures["off_rps"]) / ROUNDS
    on_rps = sum(figures["on_rps"]) / ROUNDS
    off_p50 = percentile(figures["off_lat"], 50) * 1000
    on_p50 = percentile(figures["on_lat"], 50) * 1000
    print(f"guards_off_requests_per_s_c{CONCURRENCY} {off_rps:.1f}")
    print(f"guards_on_requests_per_s_c{CONCURRENCY} {on_rps:.1f}")
    print(f"guards_on_over_off_requests_per_s {on_rps / off_rps:.2f}")
    print(f"guards_off_p50_ms_c1 {off_p50:.2f}")
    print(f"guards_on_p50_ms_c1 {on_p50:.2f}")
    print(f"guards_added_p50_ms_c1 {on_p50 - off_p50:.2f}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
