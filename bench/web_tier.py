"""What the web tier costs: `/v1` through genai-service to a fast fake upstream, against the same
load sent straight to the upstream.

The upstream (bench/fake_upstream.py) answers at once, so whatever genai-service adds —
authenticating the API key, validating the body, the guards and the accounting, calling the
upstream, re-encoding its reply — is the whole difference. Two more arms run on the same core:
bench/bare_proxy.py, a plain FastAPI server forwarding through the OpenAI SDK over aiohttp, the
SDK used as its documentation shows (the yardstick for what genai-service adds on top of FastAPI
and the SDK), and bench/passthrough_proxy.py, a FastAPI route that passes the upstream's bytes
on unread (the floor under any gateway on FastAPI: what the framework, the server and the
transport cost alone). One genai-service worker process is pinned to one core; the load client and
the upstream share the other, so the server's core is its own. Rounds alternate between straight
and through, so a change in the machine's load falls on both; each figure is the median over the
rounds.

Printed per concurrency (1, 8, 32), non-streamed chat: requests/s and p50/p99 latency straight,
through genai-service and through each proxy, the added p50 of each, the CPU milliseconds per
request of each server (user + system time of the process over the requests it served), and
genai-service's requests/s over the bare proxy's. Streamed chat (16 chunks): the time to the
first content chunk straight and through each server, the time each adds, and the CPU
milliseconds per streamed request of each, at concurrency 1 and 8. At concurrency 8 every client
sends its next request the moment its stream ends, so the server's core never idles and the
first chunk waits behind the other seven streams' work: that figure grows with the CPU a stream
costs. So streams are also sent as independent arrivals at half the rate genai-service sustained
at concurrency 8 (the same arrivals for every arm): the first chunk a client sees from a server
that is busy but not saturated.
Run: `python -m bench.web_tier`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path

from bench.fake_upstream import MODEL, REPLY_PIECES
from bench.http_load import (
    Figures,
    Send,
    cpu_seconds,
    load_average,
    percentile,
    process,
    run_at,
    run_at_rate,
)
from bench.keepalive_client import KeepAliveClient
from tests.live_server import free_port

SERVER_CORES = {1}
CLIENT_CORES = {0}
"""The client and the upstream share a core; genai-service has the other to itself."""
CONCURRENCIES = (1, 8, 32)
REQUESTS = {1: 400, 8: 2_000, 32: 2_000}
STREAM_CONCURRENCIES = (1, 8)
STREAM_REQUESTS = {1: 300, 8: 1_000}
OPEN_LOOP_SHARE = 0.5
"""The open-loop streams' rate, as a share of the rate genai-service sustained at concurrency 8."""
OPEN_LOOP_REQUESTS = 1_000
WARMUP_REQUESTS = 500
ROUNDS = 3
PASSWORD = "bench-web-tier-Passphrase-1"  # noqa: S105 - a throwaway account in a temporary database
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
STREAM = {**CHAT, "stream": True}
FIRST_CONTENT = REPLY_PIECES[0].strip().encode()


@contextmanager
def _upstream() -> Iterator[str]:
    port = free_port()
    args = ["-m", "uvicorn", "bench.fake_upstream:app", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log"]
    with process(args, f"http://127.0.0.1:{port}/healthz", os.environ.copy(), CLIENT_CORES):
        yield f"http://127.0.0.1:{port}"


PROXIES = {"bare": "bench.bare_proxy:app", "passthrough": "bench.passthrough_proxy:app"}
"""The plain FastAPI arms, by the name their figures are printed under."""


@contextmanager
def _proxy(upstream: str, app: str) -> Iterator[tuple[str, int]]:
    """A proxy of `PROXIES` on the server's core: its URL and pid."""
    port = free_port()
    args = ["-m", "uvicorn", app, "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log"]
    env = {**os.environ, "UPSTREAM": upstream}
    with process(args, f"http://127.0.0.1:{port}/healthz", env, SERVER_CORES) as pid:
        yield f"http://127.0.0.1:{port}", pid


def _service_env(root: Path, upstream: str) -> dict[str, str]:
    provider = f'[{{"kind": "openai_compatible", "base_url": "{upstream}/v1", "max_retries": 0}}]'
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_")},
        "GENAI_CONFIG": os.devnull,
        "GENAI_DATA_DIR": str(root / "data"),
        "GENAI_INFERENCE__CHAT_MODELS": f'{{"{MODEL}": {provider}}}',
        "GENAI_INFERENCE__EMBEDDING_MODELS": f'{{"fake-embeddings": {provider}}}',
        "GENAI_INFERENCE__DEFAULT_CHAT_MODEL": MODEL,
        "GENAI_INFERENCE__DEFAULT_EMBEDDING_MODEL": "fake-embeddings",
    }


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "genai_service", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@contextmanager
def _service(upstream: str) -> Iterator[tuple[str, str, int]]:
    """genai-service as `genai-service serve` runs it, one worker, with an account and its API
    key; yields its URL, the key and the server's pid."""
    with tempfile.TemporaryDirectory(prefix="genai-bench-web-") as root:
        env = _service_env(Path(root), upstream)
        email = "bench@example.com"
        _cli(env, "users", "create", "--email", email, "--password", PASSWORD)
        key = _cli(env, "keys", "create", "--email", email, "--name", "bench")
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        args = ["-m", "genai_service", "serve", "--port", str(port)]
        with process(args, f"{base_url}/readyz", env, SERVER_CORES) as pid:
            yield base_url, key, pid


def _latency(client: KeepAliveClient) -> Send:
    async def send() -> float:
        started = time.perf_counter()
        reply = await client.post_json("/v1/chat/completions", CHAT)
        if reply["usage"]["completion_tokens"] != len(REPLY_PIECES):
            raise RuntimeError(f"unexpected reply: {reply}")
        return time.perf_counter() - started

    return send


def _first_chunk(client: KeepAliveClient) -> Send:
    async def send() -> float:
        return await client.post_stream("/v1/chat/completions", STREAM, until=FIRST_CONTENT)

    return send


async def _measure(
    upstream: str, service: str, key: str, server_pid: int, proxies: dict[str, tuple[str, int]]
) -> Figures:
    figures = Figures()
    auth = {"Authorization": f"Bearer {key}"}
    largest = max(CONCURRENCIES)
    async with AsyncExitStack() as clients:
        arms: list[tuple[str, KeepAliveClient, int | None]] = [
            ("straight", KeepAliveClient(upstream, connections=largest), None),
            ("through", KeepAliveClient(service, connections=largest, headers=auth), server_pid),
        ]
        arms += [
            (name, KeepAliveClient(url, connections=largest), pid)
            for name, (url, pid) in proxies.items()
        ]
        for _, client, _ in arms:
            await clients.enter_async_context(client)
            await run_at(_latency(client), WARMUP_REQUESTS, 8)
            await run_at(_first_chunk(client), WARMUP_REQUESTS // 5, 8)
        for _ in range(ROUNDS):
            for concurrency in CONCURRENCIES:
                requests = REQUESTS[concurrency]
                for name, client, pid in arms:
                    cpu_before = cpu_seconds(pid) if pid else 0.0
                    latencies, wall = await run_at(_latency(client), requests, concurrency)
                    tag = f"{name}_c{concurrency}"
                    figures.add(f"{tag}_rps", requests / wall)
                    figures.add(f"{tag}_p50", percentile(latencies, 50))
                    figures.add(f"{tag}_p99", percentile(latencies, 99))
                    if pid:
                        cpu = cpu_seconds(pid) - cpu_before
                        figures.add(f"{name}_cpu_ms_c{concurrency}", cpu * 1000 / requests)
            for concurrency in STREAM_CONCURRENCIES:
                requests = STREAM_REQUESTS[concurrency]
                for name, client, pid in arms:
                    cpu_before = cpu_seconds(pid) if pid else 0.0
                    firsts, wall = await run_at(_first_chunk(client), requests, concurrency)
                    figures.add(f"{name}_ttfc_c{concurrency}", percentile(firsts, 50))
                    figures.add(f"{name}_streams_per_s_c{concurrency}", requests / wall)
                    if pid:
                        cpu = cpu_seconds(pid) - cpu_before
                        figures.add(f"{name}_stream_cpu_ms_c{concurrency}", cpu * 1000 / requests)
        rate = OPEN_LOOP_SHARE * figures.median("through_streams_per_s_c8")
        figures.add("open_loop_rate", rate)
        for seed in range(ROUNDS):
            for name, client, _ in arms:
                firsts, _ = await run_at_rate(
                    _first_chunk(client), OPEN_LOOP_REQUESTS, rate, seed=seed
                )
                figures.add(f"{name}_ttfc_open", percentile(firsts, 50))
                figures.add(f"{name}_ttfc_open_p99", percentile(firsts, 99))
    return figures


def main() -> None:
    print(f"load_average_before {load_average()}")
    os.sched_setaffinity(0, CLIENT_CORES)
    with (
        _upstream() as upstream,
        _service(upstream) as (service, key, server_pid),
        ExitStack() as stack,
    ):
        proxies = {
            name: stack.enter_context(_proxy(upstream, app)) for name, app in PROXIES.items()
        }
        figures = asyncio.run(_measure(upstream, service, key, server_pid, proxies))
    for concurrency in CONCURRENCIES:
        for name in ("straight", "through", *PROXIES):
            tag = f"{name}_c{concurrency}"
            print(f"chat_{tag}_requests_per_s {figures.median(f'{tag}_rps'):.0f}")
            print(f"chat_{tag}_p50_ms {figures.median(f'{tag}_p50') * 1000:.2f}")
            print(f"chat_{tag}_p99_ms {figures.median(f'{tag}_p99') * 1000:.2f}")
        straight = figures.median(f"straight_c{concurrency}_p50")
        added = figures.median(f"through_c{concurrency}_p50") - straight
        print(f"chat_added_p50_ms_c{concurrency} {added * 1000:.2f}")
        cpu_ms = figures.median(f"through_cpu_ms_c{concurrency}")
        print(f"server_cpu_ms_per_request_c{concurrency} {cpu_ms:.2f}")
        for name in PROXIES:
            proxy_added = figures.median(f"{name}_c{concurrency}_p50") - straight
            print(f"chat_{name}_added_p50_ms_c{concurrency} {proxy_added * 1000:.2f}")
            proxy_cpu_ms = figures.median(f"{name}_cpu_ms_c{concurrency}")
            print(f"{name}_proxy_cpu_ms_per_request_c{concurrency} {proxy_cpu_ms:.2f}")
        ratio = figures.median(f"through_c{concurrency}_rps")
        ratio /= figures.median(f"bare_c{concurrency}_rps")
        print(f"chat_through_over_bare_requests_per_s_c{concurrency} {ratio:.2f}")
    for concurrency in STREAM_CONCURRENCIES:
        straight = figures.median(f"straight_ttfc_c{concurrency}") * 1000
        through = figures.median(f"through_ttfc_c{concurrency}") * 1000
        print(f"stream_straight_first_chunk_ms_c{concurrency} {straight:.2f}")
        print(f"stream_through_first_chunk_ms_c{concurrency} {through:.2f}")
        print(f"stream_added_first_chunk_ms_c{concurrency} {through - straight:.2f}")
        cpu_ms = figures.median(f"through_stream_cpu_ms_c{concurrency}")
        print(f"server_cpu_ms_per_stream_c{concurrency} {cpu_ms:.2f}")
        for name in PROXIES:
            proxy_first = figures.median(f"{name}_ttfc_c{concurrency}") * 1000
            print(f"stream_{name}_first_chunk_ms_c{concurrency} {proxy_first:.2f}")
            print(f"stream_{name}_added_first_chunk_ms_c{concurrency} {proxy_first - straight:.2f}")
            proxy_cpu_ms = figures.median(f"{name}_stream_cpu_ms_c{concurrency}")
            print(f"{name}_proxy_cpu_ms_per_stream_c{concurrency} {proxy_cpu_ms:.2f}")
    print(f"stream_open_loop_streams_per_s {figures.median('open_loop_rate'):.0f}")
    straight = figures.median("straight_ttfc_open") * 1000
    print(f"stream_open_loop_straight_first_chunk_ms {straight:.2f}")
    for name in ("through", *PROXIES):
        first = figures.median(f"{name}_ttfc_open") * 1000
        first_p99 = figures.median(f"{name}_ttfc_open_p99") * 1000
        print(f"stream_open_loop_{name}_first_chunk_ms {first:.2f}")
        print(f"stream_open_loop_{name}_first_chunk_p99_ms {first_p99:.2f}")
        print(f"stream_open_loop_{name}_added_first_chunk_ms {first - straight:.2f}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
