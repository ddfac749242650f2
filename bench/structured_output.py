"""What constrained decoding costs: aggregate tokens/s at concurrency 8 with every sequence held
to a JSON Schema, beside 8 free sequences, through `/v1/chat/completions`, in one run.

Rounds alternate (constrained, free, constrained, ...) on one server, so background load hits
both alike; the medians are compared. The schema asks for a list of items with several fields,
so constrained replies are long and their tokens mix structure (where the grammar often refuses
the model's first choice) with free text inside strings.
Run: `python -m bench.structured_output`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any

import httpx
from loguru import logger

from bench.http_load import genai_server, load_average
from bench.llama_ceiling import PROMPTS, TEMPERATURE

CONCURRENCY = 8
MAX_TOKENS = 160
ROUNDS = 4
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 30},
                    "detail": {"type": "string", "maxLength": 80},
                    "rating": {"enum": [1, 2, 3, 4, 5]},
                },
                "required": ["name", "detail", "rating"],
            },
            "minItems": 4,
            "maxItems": 6,
        },
    },
    "required": ["title", "items"],
}


async def _tokens_per_s(base_url: str, *, constrained: bool, round_: int) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def one(index: int) -> int:
            body: dict[str, Any] = {
                "messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
                "max_tokens": MAX_TOKENS,
                "temperature": TEMPERATURE,
                "seed": round_ * 100 + index,
            }
            if constrained:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "list", "schema": SCHEMA},
                }
            response = await client.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            reply = response.json()
            if constrained and reply["choices"][0]["finish_reason"] == "stop":
                json.loads(reply["choices"][0]["message"]["content"])
            return int(reply["usage"]["completion_tokens"])

        started = time.perf_counter()
        tokens = await asyncio.gather(*(one(i) for i in range(CONCURRENCY)))
        return sum(tokens) / (time.perf_counter() - started)


def main() -> None:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    print(f"load_average_before {load_average()}")
    constrained: list[float] = []
    free: list[float] = []
    with genai_server() as server:
        asyncio.run(_tokens_per_s(server.base_url, constrained=True, round_=99))  # warm-up
        for round_ in range(ROUNDS):
            constrained.append(
                asyncio.run(_tokens_per_s(server.base_url, constrained=True, round_=round_))
            )
            free.append(
                asyncio.run(_tokens_per_s(server.base_url, constrained=False, round_=round_))
            )
    constrained_median, free_median = statistics.median(constrained), statistics.median(free)
    print(f"structured_c8_constrained_tokens_per_s {constrained_median:.1f}")
    print(f"structured_c8_unconstrained_tokens_per_s {free_median:.1f}")
    print(f"structured_constrained_over_unconstrained {constrained_median / free_median:.2f}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
