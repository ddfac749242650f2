"""Resident memory of the embedded default: the web process (which holds the chat model) and the
encoder process (the embedding model), idle and at their peak under load, beside the size of
the model files they hold — the floor no setting goes below.

Load: 8 streamed chat completions of 128 tokens and, at the same time, 8 clients embedding 64
texts of about 100 words each, twice over.
Run: `python -m bench.memory`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import httpx

from bench.http_load import genai_server, load_average
from genai_service.inference.local.model_file import resolve_model_path
from genai_service.settings import LocalChatSettings
from tests.process_tree import children, command_line, resident_bytes

MIB = 1024 * 1024
STREAMS = 8
EMBEDDERS = 8
TEXTS = [f"Paragraph {index} of a long report on lighthouses, " * 12 for index in range(64)]


def _encoder_pid(web_pid: int) -> int:
    """The embedding model's process: the web process's child that runs the encoder (spawned by
    multiprocessing; its resource tracker, also a child, is not it)."""
    for pid in children(web_pid):
        command = command_line(pid)
        if "resource_tracker" not in command and (
            "spawn_main" in command or "genai_service" in command
        ):
            return pid
    raise RuntimeError("the encoder process was not found")


class Peaks:
    """Largest resident memory of each process seen while sampling, every 20 ms."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], resident_bytes(pid))

    def during(self, work: Callable[[], None]) -> dict[str, int]:
        self._thread.start()
        try:
            work()
        finally:
            self._stop.set()
            self._thread.join()
        return self.peak


async def _load(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def stream(index: int) -> None:
            body = {
                "messages": [{"role": "user", "content": f"Tell story number {index}."}],
                "max_tokens": 128,
                "stream": True,
            }
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                async for _ in response.aiter_bytes():
                    pass

        async def embed() -> None:
            for _ in range(2):
                response = await client.post("/v1/embeddings", json={"input": TEXTS})
                response.raise_for_status()

        await asyncio.gather(
            *(stream(i) for i in range(STREAMS)), *(embed() for _ in range(EMBEDDERS))
        )


def main() -> None:
    print(f"load_average_before {load_average()}")
    chat_file = resolve_model_path(LocalChatSettings().model_path)
    print(f"memory_chat_model_file_mib {chat_file.stat().st_size / MIB:.0f}")
    with genai_server() as server:
        if server.process is None:
            raise RuntimeError("the server did not start")
        web = server.process.pid
        # The encoder starts with the embedding model, which readiness waits for.
        httpx.post(f"{server.base_url}/v1/embeddings", json={"input": "warm"}, timeout=120)
        pids = {"web": web, "encoder": _encoder_pid(web)}
        for name, pid in pids.items():
            print(f"memory_idle_{name}_mib {resident_bytes(pid) / MIB:.0f}")
        peaks = Peaks(pids).during(lambda: asyncio.run(_load(server.base_url)))
        for name, peak in peaks.items():
            print(f"memory_load_peak_{name}_mib {peak / MIB:.0f}")
        for name, pid in pids.items():
            print(f"memory_after_load_{name}_mib {resident_bytes(pid) / MIB:.0f}")
    print(f"load_average_after {load_average()}")


if __name__ == "__main__":
    main()
