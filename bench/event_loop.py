"""Benchmark 1: is the event loop free while the model works?

p50/p99 latency of `GET /healthz` while 8 streaming generations of 128 tokens run, on
genai-service (engine thread + continuous batching) and on the naive app (llama.cpp called inside
an `async def` route). Run: `python -m bench.event_loop`.
"""

from __future__ import annotations

import asyncio

import httpx

from bench.http_load import genai_server, load_average, naive_server, percentile, probe_while

STREAMS = 8
MAX_TOKENS = 128
PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm."


async def _measure(base_url: str, path: str, body: dict[str, object]) -> list[float]:
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def one_stream() -> None:
            async with client.stream("POST", path, json=body) as response:
                response.raise_for_status()
                async for _ in response.aiter_bytes():
                    pass

        async def all_streams() -> None:
            await asyncio.gather(*(one_stream() for _ in range(STREAMS)))

        load = asyncio.create_task(all_streams())
        await asyncio.sleep(0.05)  # let the generations start
        latencies = await probe_while(base_url, load)
        await load
        return latencies


def main() -> None:
    print(f"load_average_before {load_average()}")
    ours_body: dict[str, object] = {
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
    }
    with genai_server() as server:
        ours = asyncio.run(_measure(server.base_url, "/v1/chat/completions", ours_body))
    with naive_server() as base_url:
        naive = asyncio.run(
            _measure(base_url, "/generate", {"prompt": PROMPT, "max_tokens": MAX_TOKENS})
        )
    print(f"event_loop_probes_ours {len(ours)}")
    print(f"event_loop_healthz_p50_ms_ours {percentile(ours, 50):.1f}")
    print(f"event_loop_healthz_p99_ms_ours {percentile(ours, 99):.1f}")
    print(f"event_loop_probes_naive {len(naive)}")
    print(f"event_loop_healthz_p50_ms_naive {percentile(naive, 50):.1f}")
    print(f"event_loop_healthz_p99_ms_naive {percentile(naive, 99):.1f}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
