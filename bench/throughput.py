"""Benchmark 2: generated tokens/s through `/v1/chat/completions` against the machine's ceiling.

The ceiling is the best a bare llama.cpp batched decode loop does on this machine, over every
configuration worth trying (thread counts, KV-cache layouts, batch sizes: bench/llama_ceiling.py),
with no HTTP and no scheduler. The server runs with its defaults (threads tuned while serving)
at concurrency 1, 4 and 8, `/healthz` probed meanwhile. At concurrency 8 the server and the best
bare configuration take turns, three rounds each, and the medians are compared: both meet the
same background load, and each figure is one measurement, not the best of several (the ratio
to the best round of the search is printed too). Concurrency 1 is compared with the same
configuration decoding one sequence.

The server's figure is its steady state at that concurrency: every client sends its next request
the moment the last one ends, and the engine's count of generated tokens (`/metrics`) is read
when every client has a request running and again `WINDOW_S` later. Requests that end early
and new ones being prefilled are inside the window; the end of the run, when clients stop and
fewer requests are left running, is not.

Then the same under contention: a busy process pinned to one core, as another tenant would be;
the bare loop with each thread count, and the server with its defaults and with its threads
pinned to every core, side by side.
Run: `python -m bench.throughput`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from loguru import logger
from prometheus_client.parser import text_string_to_metric_families

from bench.http_load import genai_server, load_average, percentile, probe_while
from bench.llama_ceiling import (
    PROMPTS,
    TEMPERATURE,
    Configuration,
    bare_batched_tokens_per_s,
    best_ceiling,
)
from genai_service.inference.local.decode_context import available_cores
from genai_service.settings import LocalChatSettings
from tests.live_server import LiveServer

MAX_TOKENS = 128
WINDOW_S = 20.0
"""How long the generated tokens are counted at each concurrency."""
WARM_IN_S = 3.0
"""From the first requests to the window: long enough for every client's first prompt to be in."""
ROUNDS = 3
"""Turns of the server and the best bare configuration at concurrency 8."""
GENERATED = "local_chat_generated_tokens_total"


async def _generated_tokens(client: httpx.AsyncClient) -> float:
    response = await client.get("/metrics")
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == GENERATED:
                return sample.value
    raise RuntimeError(f"/metrics has no {GENERATED}")


async def _tokens_per_s(base_url: str, concurrency: int) -> tuple[float, list[float]]:
    """Generated tokens/s while `concurrency` clients each keep a request running, and
    `/healthz` latencies (ms) meanwhile."""
    stopping = asyncio.Event()
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def worker(index: int) -> None:
            round_ = 0
            while not stopping.is_set():
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
                round_ += 1

        async def everyone() -> None:
            await asyncio.gather(*(worker(i) for i in range(concurrency)))

        load = asyncio.create_task(everyone())
        probing = asyncio.create_task(probe_while(base_url, load))
        await asyncio.sleep(WARM_IN_S)
        first, opened = await _generated_tokens(client), time.perf_counter()
        await asyncio.sleep(WINDOW_S)
        last, closed = await _generated_tokens(client), time.perf_counter()
        stopping.set()
        await load
        return (last - first) / (closed - opened), await probing


def _warm_up(server: LiveServer) -> None:
    """One request, so that the weights are paged in before anything is timed."""
    httpx.post(
        f"{server.base_url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": PROMPTS[0]}], "max_tokens": 16},
        timeout=600,
    ).raise_for_status()


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


def _quiet(best: Configuration, best_figure: float) -> None:
    """The server at concurrency 1 and 4, then at 8 taking turns with the best bare loop
    (`best_figure`: its best round in the search for it)."""
    settings = LocalChatSettings(n_threads=best.threads, n_batch=best.batch)
    alone = bare_batched_tokens_per_s(1, MAX_TOKENS, settings, rounds=1, unified=best.unified)
    print(f"quiet_best_bare_1_sequence_tokens_per_s {alone:.1f}")
    with genai_server() as server:
        _warm_up(server)
        figures: dict[int, float] = {}
        for concurrency in (1, 4):
            figure, probes = asyncio.run(_tokens_per_s(server.base_url, concurrency))
            figures[concurrency] = figure
            print(f"quiet_server_tokens_per_s_c{concurrency} {figure:.1f}")
            print(f"quiet_server_healthz_p99_ms_c{concurrency} {percentile(probes, 99):.1f}")
        bare: list[float] = []
        served: list[float] = []
        probes_c8: list[float] = []
        for round_ in range(ROUNDS):
            bare.append(
                bare_batched_tokens_per_s(8, MAX_TOKENS, settings, rounds=1, unified=best.unified)
            )
            print(f"quiet_best_bare_tokens_per_s_round{round_} {bare[-1]:.1f}")
            figure, round_probes = asyncio.run(_tokens_per_s(server.base_url, 8))
            served.append(figure)
            probes_c8 += round_probes
            print(f"quiet_server_tokens_per_s_c8_round{round_} {figure:.1f}")
    figures[8] = statistics.median(served)
    print(f"quiet_best_bare_tokens_per_s {statistics.median(bare):.1f}")
    print(f"quiet_server_tokens_per_s_c8 {figures[8]:.1f}")
    print(f"quiet_server_healthz_p99_ms_c8 {percentile(probes_c8, 99):.1f}")
    print(f"quiet_server_c8_over_best_bare {figures[8] / statistics.median(bare):.2f}")
    print(f"quiet_server_c8_over_best_bare_best_round {figures[8] / best_figure:.2f}")
    print(f"quiet_server_c1_over_best_bare_1_sequence {figures[1] / alone:.2f}")
    print(f"quiet_server_c8_over_c1 {figures[8] / figures[1]:.2f}")


def _busy_server(label: str, **env: str) -> float:
    with genai_server(**env) as server:
        _warm_up(server)
        figure, probes = asyncio.run(_tokens_per_s(server.base_url, 8))
    print(f"{label}_tokens_per_s_c8 {figure:.1f}")
    print(f"{label}_healthz_p99_ms_c8 {percentile(probes, 99):.1f}")
    return figure


def main() -> None:
    logger.remove()  # llama.cpp's load chatter is routed to loguru at debug level
    logger.add(sys.stderr, level="WARNING")
    cores = available_cores()
    print(f"load_average_before {load_average()}")
    best, ceilings = best_ceiling(tokens=MAX_TOKENS)
    for name, value in ceilings.items():
        print(f"ceiling_bare_batched_8_{name}_tokens_per_s {value:.1f}")
    print(f"ceiling_best {best.label}")
    _quiet(best, max(ceilings.values()))
    print(f"load_average_quiet_part {load_average()}")
    with _busy_core():
        contended: dict[int, float] = {}
        for threads in range(1, cores + 1):
            settings = LocalChatSettings(n_threads=threads)
            contended[threads] = bare_batched_tokens_per_s(8, MAX_TOKENS, settings)
            print(f"busy_bare_batched_8_threads{threads}_tokens_per_s {contended[threads]:.1f}")
        tuned = _busy_server("busy_server")
        pinned = _busy_server(
            f"busy_server_threads{cores}", GENAI_INFERENCE__LOCAL_CHAT__N_THREADS=str(cores)
        )
    print(f"busy_server_c8_over_best_bare {tuned / max(contended.values()):.2f}")
    print(f"busy_server_over_server_threads{cores} {tuned / pinned:.2f}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
