"""Benchmark 2: generated tokens/s through `/v1/chat/completions` against the machine's ceiling.

The ceiling is the best a bare llama.cpp batched decode loop does on this machine, over every
configuration worth trying (thread counts, KV-cache layouts, batch sizes: bench/llama_ceiling.py),
with no HTTP and no scheduler. The server runs with its defaults (threads tuned while serving)
at concurrency 1, 4 and 8, `/healthz` probed during the concurrency-8 run.

Then the same under contention: a busy process pinned to one core, as another tenant would be;
the bare loop with each thread count, and the server with its defaults and with its threads
pinned to every core, side by side.
Run: `python -m bench.throughput`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from loguru import logger

from bench.http_load import genai_server, load_average, percentile, probe_while
from bench.llama_ceiling import PROMPTS, TEMPERATURE, bare_batched_tokens_per_s, best_ceiling
from genai_service.inference.local.decode_context import available_cores
from genai_service.settings import LocalChatSettings

MAX_TOKENS = 128
ROUNDS = 3


async def _tokens_per_s(base_url: str, concurrency: int) -> tuple[float, list[float]]:
    """Generated tokens/s of `concurrency` clients, and `/healthz` latencies (ms) meanwhile."""
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def worker(index: int) -> int:
            generated = 0
            for round_ in range(ROUNDS):
                response = await client.post(
                    "/v1/chat/completions",
                    json={
                        "messages": [
                            {"role": "user", "content": PROMPTS[(index + round_) % len(PROMPTS)]}
                        ],
                        "max_tokens": MAX_TOKENS,
                        "temperature": TEMPERATURE,
                        "seed": index * 100 + round_,
                    },
                )
                response.raise_for_status()
                generated += int(response.json()["usage"]["completion_tokens"])
            return generated

        async def everyone() -> list[int]:
            return await asyncio.gather(*(worker(i) for i in range(concurrency)))

        started = time.perf_counter()
        load = asyncio.create_task(everyone())
        probes = await probe_while(base_url, load)
        totals = await load
        return sum(totals) / (time.perf_counter() - started), probes


def _server_figures(label: str, concurrencies: tuple[int, ...], **env: str) -> dict[int, float]:
    figures: dict[int, float] = {}
    with genai_server(**env) as server:
        asyncio.run(_tokens_per_s(server.base_url, 1))  # warm-up
        for concurrency in concurrencies:
            figures[concurrency], probes = asyncio.run(_tokens_per_s(server.base_url, concurrency))
            print(f"{label}_tokens_per_s_c{concurrency} {figures[concurrency]:.1f}")
        print(f"{label}_healthz_p99_ms_c{concurrencies[-1]} {percentile(probes, 99):.1f}")
    return figures


def _spin(core: int) -> None:
    os.sched_setaffinity(0, {core})
    while True:
        pass


@contextmanager
def _busy_core() -> Iterator[None]:
    """Another tenant: a process spinning on the last core."""
    spinner = multiprocessing.Process(target=_spin, args=(available_cores() - 1,), daemon=True)
    spinner.start()
    try:
        yield
    finally:
        spinner.kill()
        spinner.join()


def main() -> None:
    logger.remove()  # llama.cpp's load chatter is routed to loguru at debug level
    logger.add(sys.stderr, level="WARNING")
    cores = available_cores()
    print(f"load_average_before {load_average()}")
    best, ceilings = best_ceiling(tokens=MAX_TOKENS)
    for name, value in ceilings.items():
        print(f"ceiling_bare_batched_8_{name}_tokens_per_s {value:.1f}")
    print(f"ceiling_best {best.label}")
    quiet = _server_figures("quiet_server", (1, 4, 8))
    print(f"quiet_server_c8_over_best_bare {quiet[8] / max(ceilings.values()):.2f}")
    print(f"quiet_server_c8_over_c1 {quiet[8] / quiet[1]:.2f}")
    print(f"load_average_quiet_part {load_average()}")
    with _busy_core():
        contended: dict[int, float] = {}
        for threads in range(1, cores + 1):
            settings = LocalChatSettings(n_threads=threads)
            contended[threads] = bare_batched_tokens_per_s(8, MAX_TOKENS, settings)
            print(f"busy_bare_batched_8_threads{threads}_tokens_per_s {contended[threads]:.1f}")
        tuned = _server_figures("busy_server", (8,))
        pinned = _server_figures(
            f"busy_server_threads{cores}", (8,), GENAI_INFERENCE__LOCAL_CHAT__N_THREADS=str(cores)
        )
    print(f"busy_server_c8_over_best_bare {tuned[8] / max(contended.values()):.2f}")
    print(f"busy_server_over_server_threads{cores} {tuned[8] / pinned[8]:.2f}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
