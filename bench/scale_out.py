"""Scale-out on PostgreSQL + Redis: one web worker against two, and what Redis-backed streaming
adds over the in-process event log.

Three genai-service servers side by side, each on its own database of one throwaway PostgreSQL
server, all calling the same fast fake upstream (bench/fake_upstream.py) on loopback:

- **one worker** — `genai-service serve`, with `GENAI_REDIS__URL` set (a throwaway Redis);
- **two workers** — `genai-service serve --workers 2`, the same settings;
- **in-process** — `genai-service serve`, one worker, `GENAI_REDIS__URL` unset.

Every server reaches Qdrant at a URL nobody answers (an embedded Qdrant folder belongs to one
process): nothing measured here touches vectors. The caller is one API key with no limits
(every call still updates its usage counters: with one caller, the same rows every time).

1. **Requests/s, one worker against two:** non-streamed `/v1/chat/completions`, 16 at once over
   16 keep-alive connections (which the two workers share out as they accept them; the split
   is printed). Rounds alternate between the two servers, so a change in the machine's load
   falls on both; each figure is the median over the rounds. Also printed per arm: the CPU
   milliseconds per request of the server's processes, PostgreSQL, Redis, and the load client
   with the upstream; the cores the server kept busy, and the cores everything else on the
   machine did (other users' work, the idle servers of this run) — on a shared machine the
   ratio only means something next to the last figure.
2. **Streaming, Redis against in-process:** a streamed conversation turn (the reply's events go
   through the generation event log: Redis Streams, or the process's memory), one at a time,
   on the one-worker servers: the time to its first event (`generation`) and to its first
   `delta`; once the turn has ended, the resume latency — `GET /api/generations/{id}/events`
   with `Last-Event-ID: 1`, a replay, timed to its first event. Medians over all turns, the two
   servers alternating every round.

Cores, on a 2-core machine: the servers (every worker), PostgreSQL and Redis may run on both
cores; the load client (this process) and the fake upstream are pinned to core 0, so in both
arms the servers share core 0 with them and core 1 only with each other. One worker is one
event loop, about one core at most; two workers can use core 1 and what core 0 has left.

About 4,000 requests in all, two to three minutes on a quiet 2-core machine.
Run: `python -m bench.scale_out`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.fake_upstream import MODEL, REPLY_PIECES
from bench.http_load import (
    Figures,
    Send,
    cpu_seconds,
    load_average,
    percentile,
    process,
    process_tree,
    run_at,
    tree_cpu_seconds,
)
from bench.keepalive_client import KeepAliveClient
from tests.live_server import LiveServer, free_port
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer

SERVER_CORES = {0, 1}
CLIENT_CORES = {0}
"""The load client and the fake upstream share core 0; the servers may use both."""
CONCURRENCY = 16
REQUESTS = 500
WARMUP_REQUESTS = 150
ROUNDS = 3
TURNS = 40
"""Streamed turns per server and round."""
WARMUP_TURNS = 10
STREAM_ROUNDS = 3
WORKERS_STARTED_TIMEOUT_S = 120
PASSWORD = "bench-scale-out-Passphrase-1"  # noqa: S105 - a throwaway account in a temporary database
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
TURN = {"content": "Say hello.", "stream": True}
FIRST_EVENT = b"event: generation"
FIRST_DELTA = b"event: delta"
DONE = b"event: done"
REDIS_PREFIX = "bench-scale:"
GENERATION_ID = re.compile(rb'"generation_id":"([0-9a-f-]{36})"')


@dataclass(frozen=True)
class Service:
    url: str
    key: str
    pid: int
    """The server's first process (uvicorn's supervisor, with `--workers`)."""
    workers: int


@dataclass(frozen=True)
class Backing:
    """What the servers share and what serves them besides: CPU time is counted for each."""

    postgres: PostgresServer
    redis: RedisServer
    upstream: str
    upstream_pid: int


@contextmanager
def _pinned(cores: set[int]) -> Iterator[None]:
    """This thread on `cores` for a while: processes started meanwhile inherit them."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def _postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    with _pinned(SERVER_CORES):
        server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _redis() -> Iterator[RedisServer]:
    server = RedisServer()
    with _pinned(SERVER_CORES):
        server.start()
    try:
        yield server
    finally:
        server.remove()


@contextmanager
def _upstream() -> Iterator[tuple[str, int]]:
    port = free_port()
    args = ["-m", "uvicorn", "bench.fake_upstream:app", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log"]
    with process(args, f"http://127.0.0.1:{port}/healthz", os.environ.copy(), CLIENT_CORES) as pid:
        yield f"http://127.0.0.1:{port}", pid


def _postmaster_pid(server: PostgresServer) -> int:
    return int((server.data / "postmaster.pid").read_text().split()[0])


async def _create_database(admin_url: str, name: str) -> str:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "genai_service", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _ready_but_for_vectors(response: httpx.Response) -> bool:
    if response.status_code == 200:
        return True
    checks = response.json().get("checks", {})
    return bool(checks) and {name for name, ok in checks.items() if not ok} == {"vector_store"}


def _wait_for_workers(server: LiveServer, workers: int) -> None:
    """Until every worker has started: connections opened before would all land on the first."""
    deadline = time.monotonic() + WORKERS_STARTED_TIMEOUT_S
    started = re.compile(r"genai-service \S+ started")
    while len(started.findall(server.log_path.read_text())) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers not started:\n{server.log_path.read_text()[-4000:]}")
        time.sleep(0.25)


@contextmanager
def _service(
    backing: Backing, root: Path, name: str, *, workers: int, redis_url: str | None
) -> Iterator[Service]:
    """`genai-service serve` (with `--workers` if more than one) on a new database of its own,
    with an account and its API key."""
    database_url = asyncio.run(_create_database(backing.postgres.admin_url, f"bench_{name}"))
    provider = {"kind": "openai_compatible", "base_url": f"{backing.upstream}/v1", "max_retries": 0}
    env = {
        "GENAI_CONFIG": os.devnull,
        "GENAI_DATABASE_URL": database_url,
        "GENAI_VECTORS__URL": f"http://127.0.0.1:{free_port()}",
        "GENAI_INFERENCE__CHAT_MODELS": json.dumps({MODEL: [provider]}),
        "GENAI_INFERENCE__EMBEDDING_MODELS": json.dumps({"fake-embeddings": [provider]}),
        "GENAI_INFERENCE__DEFAULT_CHAT_MODEL": MODEL,
        "GENAI_INFERENCE__DEFAULT_EMBEDDING_MODEL": "fake-embeddings",
    }
    if redis_url is not None:
        env |= {"GENAI_REDIS__URL": redis_url, "GENAI_REDIS__KEY_PREFIX": f"{REDIS_PREFIX}{name}:"}
    args = ["--workers", str(workers)] if workers > 1 else []
    server = LiveServer(root / name, env, name=name, args=args, ready=_ready_but_for_vectors)
    email = f"{name}@example.com"
    _cli(server.env, "users", "create", "--email", email, "--password", PASSWORD)
    key = _cli(server.env, "keys", "create", "--email", email, "--name", "bench")
    with _pinned(SERVER_CORES):
        server.start()
    try:
        assert server.process is not None
        _wait_for_workers(server, workers)
        yield Service(server.base_url, key, server.process.pid, workers)
    finally:
        server.stop()


def _chat(client: KeepAliveClient) -> Send:
    async def send() -> float:
        started = time.perf_counter()
        reply = await client.post_json("/v1/chat/completions", CHAT)
        if reply["usage"]["completion_tokens"] != len(REPLY_PIECES):
            raise RuntimeError(f"unexpected reply: {reply}")
        return time.perf_counter() - started

    return send


def _worker_pids(service: Service) -> list[int]:
    """The processes serving requests: with `--workers`, the supervisor's spawned children
    (not its multiprocessing helpers, such as the resource tracker)."""
    if service.workers == 1:
        return [service.pid]
    return [
        pid
        for pid in process_tree(service.pid)[1:]
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _connections_per_worker(service: Service) -> list[int]:
    """Established loopback connections each worker process holds to the server's port."""
    port = int(service.url.rsplit(":", 1)[1])
    established: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            established.add(fields[9])
    counts = []
    for pid in _worker_pids(service):
        sockets = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        counts.append(sum(f"socket:[{inode}]" in sockets for inode in established))
    return sorted(counts, reverse=True)


def _busy_seconds() -> float:
    """CPU time the whole machine (every core, every process) has spent busy so far."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


OURS = ("server", "postgres", "redis", "client_and_upstream")


def _cpu(backing: Backing, service: Service) -> dict[str, float]:
    assert backing.redis.process is not None
    return {
        "machine": _busy_seconds(),
        "server": tree_cpu_seconds(service.pid),
        "postgres": tree_cpu_seconds(_postmaster_pid(backing.postgres)),
        "redis": tree_cpu_seconds(backing.redis.process.pid),
        "client_and_upstream": cpu_seconds(os.getpid()) + cpu_seconds(backing.upstream_pid),
    }


async def _throughput(backing: Backing, one: Service, two: Service) -> Figures:
    figures = Figures()
    auth = {"Authorization": f"Bearer {one.key}"}
    async with KeepAliveClient(one.url, CONCURRENCY, auth, probe="/healthz") as one_client:
        auth = {"Authorization": f"Bearer {two.key}"}
        async with KeepAliveClient(two.url, CONCURRENCY, auth, probe="/healthz") as two_client:
            arms = (("1", one, one_client), ("2", two, two_client))
            for _, _, client in arms:
                await run_at(_chat(client), WARMUP_REQUESTS, CONCURRENCY)
            split = _connections_per_worker(two)
            print(f"two_workers_connections_per_worker {' '.join(map(str, split))}")
            for _ in range(ROUNDS):
                for workers, service, client in arms:
                    before = _cpu(backing, service)
                    _, wall = await run_at(_chat(client), REQUESTS, CONCURRENCY)
                    after = _cpu(backing, service)
                    spent = {part: after[part] - before[part] for part in after}
                    figures.add(f"rps_{workers}", REQUESTS / wall)
                    for part in OURS:
                        figures.add(f"cpu_{part}_{workers}", spent[part] * 1000 / REQUESTS)
                    figures.add(f"server_cores_{workers}", spent["server"] / wall)
                    others = spent["machine"] - sum(spent[part] for part in OURS)
                    figures.add(f"other_cores_{workers}", max(others, 0.0) / wall)
    return figures


async def _turn(client: KeepAliveClient, figures: Figures | None, arm: str) -> None:
    """One streamed turn in a new conversation, then its replay after `Last-Event-ID: 1`."""
    conversation = await client.post_json("/api/conversations", {"model": MODEL, "title": "b"})
    path = f"/api/conversations/{conversation['id']}/messages"
    (first_event, first_delta, _), body = await client.stream(
        "POST", path, TURN, marks=(FIRST_EVENT, FIRST_DELTA, DONE)
    )
    named = GENERATION_ID.search(body)
    if named is None:
        raise RuntimeError(f"no generation id in {body[:300]!r}")
    generation = named[1].decode()
    (resumed, _), replay = await client.stream(
        "GET",
        f"/api/generations/{generation}/events",
        marks=(FIRST_DELTA, DONE),
        headers={"Last-Event-ID": "1"},
    )
    if replay.count(FIRST_DELTA) != len(REPLY_PIECES) or FIRST_EVENT in replay:
        raise RuntimeError(f"unexpected replay: {replay[:300]!r}")
    if figures is not None:
        figures.add(f"first_event_{arm}", first_event)
        figures.add(f"first_delta_{arm}", first_delta)
        figures.add(f"resume_{arm}", resumed)


async def _streaming(with_redis: Service, in_process: Service) -> Figures:
    figures = Figures()
    redis_auth = {"Authorization": f"Bearer {with_redis.key}"}
    memory_auth = {"Authorization": f"Bearer {in_process.key}"}
    async with (
        KeepAliveClient(with_redis.url, 1, redis_auth) as redis_client,
        KeepAliveClient(in_process.url, 1, memory_auth) as memory_client,
    ):
        arms = (("redis", redis_client), ("in_process", memory_client))
        for arm, client in arms:
            for _ in range(WARMUP_TURNS):
                await _turn(client, None, arm)
        for _ in range(STREAM_ROUNDS):
            for arm, client in arms:
                for _ in range(TURNS):
                    await _turn(client, figures, arm)
    return figures


def _check_events_in_redis(backing: Backing) -> None:
    """The Redis arm's turns really went through Redis Streams."""
    client = redis.Redis.from_url(backing.redis.url)
    try:
        logs = sum(1 for _ in client.scan_iter(match=f"{REDIS_PREFIX}one:generation:*:events"))
    finally:
        client.close()
    if logs < STREAM_ROUNDS * TURNS:
        raise RuntimeError(f"only {logs} generation event logs in Redis")


def _print_throughput(figures: Figures) -> None:
    one, two = figures.median("rps_1"), figures.median("rps_2")
    print(f"one_worker_requests_per_s_c{CONCURRENCY} {one:.1f}")
    print(f"two_workers_requests_per_s_c{CONCURRENCY} {two:.1f}")
    print(f"scale_2_over_1_workers_requests_per_s {two / one:.2f}")
    for workers, name in (("1", "one_worker"), ("2", "two_workers")):
        for part in OURS:
            ms = figures.median(f"cpu_{part}_{workers}")
            print(f"{name}_{part}_cpu_ms_per_request {ms:.2f}")
        print(f"{name}_server_cores_busy {figures.median(f'server_cores_{workers}'):.2f}")
        print(f"{name}_other_processes_cores_busy {figures.median(f'other_cores_{workers}'):.2f}")


def _print_streaming(figures: Figures) -> None:
    for figure in ("first_event", "first_delta", "resume"):
        with_redis = percentile(figures[f"{figure}_redis"], 50) * 1000
        in_process = percentile(figures[f"{figure}_in_process"], 50) * 1000
        print(f"{figure}_p50_ms_redis {with_redis:.2f}")
        print(f"{figure}_p50_ms_in_process {in_process:.2f}")
        print(f"{figure}_added_p50_ms_redis {with_redis - in_process:.2f}")


def main() -> None:
    print(f"load_average_before {load_average()}")
    os.sched_setaffinity(0, CLIENT_CORES)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="genai-bench-scale-")))
        postgres = stack.enter_context(_postgres())
        redis_server = stack.enter_context(_redis())
        upstream, upstream_pid = stack.enter_context(_upstream())
        backing = Backing(postgres, redis_server, upstream, upstream_pid)
        one = stack.enter_context(
            _service(backing, root, "one", workers=1, redis_url=redis_server.url)
        )
        two = stack.enter_context(
            _service(backing, root, "two", workers=2, redis_url=redis_server.url)
        )
        in_process = stack.enter_context(
            _service(backing, root, "in_process", workers=1, redis_url=None)
        )
        throughput = asyncio.run(_throughput(backing, one, two))
        streaming = asyncio.run(_streaming(one, in_process))
        _check_events_in_redis(backing)
    _print_throughput(throughput)
    _print_streaming(streaming)
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
