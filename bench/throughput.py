"""Benchmark 2: aggregate generated tokens/s through `/v1/chat/completions`.

Concurrency 1, 4 and 8 against genai-service, beside the ceiling: a bare llama.cpp batched decode
loop on the same model and machine, with no HTTP and no scheduler, in a context configured like
the engine's and sampling like these requests do (bench/llama_ceiling.py).
Run: `python -m bench.throughput`.
"""

from __future__ import annotations

import asyncio
import sys
import time

import httpx
from loguru import logger

from bench.http_load import genai_server, load_average
from bench.llama_ceiling import PROMPTS, TEMPERATURE, bare_batched_tokens_per_s

MAX_TOKENS = 128
ROUNDS = 3


async def _tokens_per_s(base_url: str, concurrency: int) -> float:
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

        started = time.perf_counter()
        totals = await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return sum(totals) / (time.perf_counter() - started)


def main() -> None:
    logger.remove()  # llama.cpp's load chatter is routed to loguru at debug level
    logger.add(sys.stderr, level="WARNING")
    print(f"load_average_before {load_average()}")
    figures: dict[int, float] = {}
    with genai_server() as server:
        asyncio.run(_tokens_per_s(server.base_url, 1))  # warm-up
        for concurrency in (1, 4, 8):
            figures[concurrency] = asyncio.run(_tokens_per_s(server.base_url, concurrency))
    ceiling = bare_batched_tokens_per_s(sequences=8, tokens=MAX_TOKENS)
    single = bare_batched_tokens_per_s(sequences=1, tokens=MAX_TOKENS)
    for concurrency, value in figures.items():
        print(f"throughput_tokens_per_s_c{concurrency} {value:.1f}")
    print(f"throughput_bare_llama_batched_8_tokens_per_s {ceiling:.1f}")
    print(f"throughput_bare_llama_single_tokens_per_s {single:.1f}")
    print(f"throughput_bare_batched_8_over_single {ceiling / single:.2f}")
    print(f"throughput_c8_over_c1 {figures[8] / figures[1]:.2f}")
    print(f"throughput_c8_over_bare {figures[8] / ceiling:.2f}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
