"""Shared pieces of the HTTP benchmarks: servers on loopback ports, closed-loop and open-loop
load, latency percentiles and the CPU time processes spent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.keepalive_client import KeepAliveClient
from tests.live_server import LiveServer, free_port


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: the machine is shared, so every run reports them."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:  # the naive app can block every probe but one
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and every living process descended from it (such as a server's worker processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, pending = [], [pid]
    while pending:
        tree.append(current := pending.pop())
        pending += children.get(current, [])
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and its living descendants so far (`cpu_seconds` of each)."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):  # gone meanwhile
            total += cpu_seconds(member)
    return total


Send = Callable[[], Awaitable[float]]


async def run_at(send: Send, requests: int, concurrency: int) -> tuple[list[float], float]:
    """Each request's figure (seconds), `concurrency` at a time, and the wall time of all."""
    figures: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            figures.append(await send())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return figures, time.perf_counter() - started


async def run_at_rate(
    send: Send, requests: int, rate: float, *, seed: int
) -> tuple[list[float], float]:
    """Each request's figure (seconds), the requests sent at `rate` a second on average as
    independent arrivals (exponential gaps, from `seed`: every arm given the same seed meets the
    same arrivals), whether or not earlier ones have been answered; and the wall time of all.
    An open loop: unlike `run_at`, a slow server does not slow the arrivals down."""
    gaps = random.Random(seed)
    started = time.perf_counter()
    due = started
    sent: list[asyncio.Future[float]] = []
    for _ in range(requests):
        due += gaps.expovariate(rate)
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        sent.append(asyncio.ensure_future(send()))
    figures = await asyncio.gather(*sent)
    return figures, time.perf_counter() - started


class Figures(dict[str, list[float]]):
    def add(self, name: str, value: float) -> None:
        self.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self[name])


@contextmanager
def genai_server(**env: str) -> Iterator[LiveServer]:
    """genai-service with the embedded models, on a fresh data dir."""
    with tempfile.TemporaryDirectory(prefix="genai-bench-") as root:
        server = LiveServer(Path(root) / "data", env={"GENAI_LOG_LEVEL": "WARNING", **env})
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def naive_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.naive_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=os.environ.copy(),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.25)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


PROBE_INTERVAL_S = 0.02


async def probe_while(base_url: str, load: asyncio.Task[Any]) -> list[float]:
    """Latencies (ms) of `GET /healthz`, probed every 20 ms until `load` is done.

    The probe shares the server's cores, so it uses the light client: httpx spends about 0.9 ms
    of CPU on a request, three times what the server spends answering it, and at 50 probes a
    second that alone took a tenth off the throughput measured beside it."""
    latencies: list[float] = []
    async with KeepAliveClient(base_url, connections=1) as client:
        while not load.done():
            started = time.perf_counter()
            await client.request("GET", "/healthz")
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(PROBE_INTERVAL_S)
    return latencies


READY_TIMEOUT_S = 120


@contextmanager
def process(
    args: Sequence[str], ready_url: str, env: dict[str, str], cores: set[int] | None = None
) -> Iterator[int]:
    """A Python process (pinned to `cores` if given), once `ready_url` answers 200; yields its
    pid. Its output goes to a temporary file, shown if it exits early."""
    with tempfile.TemporaryFile() as log:
        running = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        if cores is not None:
            os.sched_setaffinity(running.pid, cores)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while True:
                if running.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{args} exited:\n{log.read().decode()[-4000:]}")
                try:
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args} not ready in time")
                time.sleep(0.25)
            yield running.pid
        finally:
            running.terminate()
            try:
                running.wait(timeout=30)
            except subprocess.TimeoutExpired:
                running.kill()
                running.wait(timeout=10)
