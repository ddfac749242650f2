"""Zero-downtime restarts: a real `genai-service serve` process told to stop (SIGTERM) while it
writes a reply from a real model host. It stops accepting connections at once, lets the reply
finish within `GENAI_HTTP__SHUTDOWN_GRACE_SECONDS`, or stores it as far as it got when the grace
period ends, and then exits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from genai_service.app import create_app
from genai_service.inference.registry import ModelRegistry
from tests.conftest import client_for, make_settings
from tests.conversations.support import SseEvent, parse_sse
from tests.deployment.topology import web_worker_environment
from tests.live_server import LiveServer
from tests.llama_cpp_server import LlamaCppServer

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def web_worker(
    tmp_path: Path, database_url: str, host: LlamaCppServer, grace_seconds: float
) -> AsyncIterator[LiveServer]:
    env = web_worker_environment(host, database_url)
    env["GENAI_HTTP__SHUTDOWN_GRACE_SECONDS"] = str(grace_seconds)
    live = LiveServer(tmp_path / "web", env=env)
    await asyncio.to_thread(live.start)
    try:
        yield live
    finally:
        await asyncio.to_thread(live.stop)


async def streamed_turn(
    base_url: str, on_first_delta: Callable[[], None], *, hang_up: bool = False, **turn: Any
) -> list[SseEvent]:
    """A new conversation's streamed turn, read to its final event (`hang_up`: the client goes
    away after the first delta)."""
    events: list[SseEvent] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        created = await http.post("/api/conversations", json={})
        assert created.status_code == 201, created.text
        async with http.stream(
            "POST",
            f"/api/conversations/{created.json()['id']}/messages",
            json={"content": "Write a long story about a dragon.", "stream": True, **turn},
        ) as response:
            assert response.status_code == 200
            block: list[str] = []
            async for line in response.aiter_lines():
                if line:
                    block.append(line)
                    continue
                events.extend(parse_sse("\n".join(block) + "\n\n")[0])
                block = []
                if [event.event for event in events].count("delta") == 1:
                    on_first_delta()
                    if hang_up:
                        break
    return events


async def refuses_connections(base_url: str, within: float = 1.0) -> bool:
    """Whether the server stops serving new connections within `within` seconds: uvicorn
    closes its listening socket at its next tick (every 0.1 s) after the signal. A connection
    the kernel took meanwhile is closed unanswered (a read error): not served either."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                await http.get("/healthz", headers={"Connection": "close"})
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                return True
            await asyncio.sleep(0.02)
    return False


async def exit_within(process: subprocess.Popen[bytes], seconds: float) -> tuple[int, float]:
    started = time.monotonic()
    code = await asyncio.to_thread(process.wait, seconds)
    return code, time.monotonic() - started


async def stored_messages(tmp_path: Path, database_url: str, conversation_id: str) -> list[Any]:
    """The conversation as another process reads it from the shared database afterwards."""
    app = create_app(
        make_settings(tmp_path / "reader", database_url),
        models=ModelRegistry(chat={}, embeddings={}),
    )
    async with LifespanManager(app), client_for(app) as http:
        response = await http.get(f"/api/conversations/{conversation_id}/messages")
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def deltas(events: list[SseEvent]) -> str:
    return "".join(event.data["text"] for event in events if event.event == "delta")


async def test_sigterm_lets_the_reply_being_written_finish_then_exits(
    tmp_path: Path, database_url: str, model_host: LlamaCppServer
) -> None:
    """The client hangs up as the signal arrives, so no open connection holds the server: the
    drain alone keeps the process until the reply is written and stored."""
    async with web_worker(tmp_path, database_url, model_host, grace_seconds=30) as live:
        process = live.process
        assert process is not None
        events = await streamed_turn(
            live.base_url,
            lambda: process.send_signal(signal.SIGTERM),
            hang_up=True,
            max_tokens=48,
            temperature=0,
        )
        assert await refuses_connections(live.base_url)
        code, took = await exit_within(process, 30)
    # uvicorn, its shutdown done, raises the signal again: the exit status names what stopped it.
    assert code == -signal.SIGTERM
    assert took < 15, "it exits once the reply is stored, not at the end of the grace period"
    stored = await stored_messages(tmp_path, database_url, events[0].data["conversation_id"])
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    assert stored[1]["content"].startswith(deltas(events))
    assert stored[1]["completion_tokens"] > 1
    log = live.log_path.read_text()
    assert "draining: 1 generation(s) may run for 30 s more" in log


async def test_sigterm_stops_a_reply_still_running_at_the_end_of_the_grace_period(
    tmp_path: Path, database_url: str, model_host: LlamaCppServer
) -> None:
    """The host stalls (paused) after the first token: the reply cannot finish in time."""
    grace = 1.0

    def stall_then_stop() -> None:
        model_host.pause()
        os.kill(process.pid, signal.SIGTERM)

    try:
        async with web_worker(tmp_path, database_url, model_host, grace_seconds=grace) as live:
            process = live.process
            assert process is not None
            signalled = time.monotonic()
            events = await streamed_turn(
                live.base_url, stall_then_stop, max_tokens=100, temperature=0
            )
            code, _ = await exit_within(process, 30)
            took = time.monotonic() - signalled
    finally:
        model_host.resume()
    assert code == -signal.SIGTERM
    assert took < grace + 12
    final = events[-1]
    assert (final.event, final.data["reason"]) == ("error", "server-shutdown")
    partial = deltas(events)
    assert partial
    assert final.data["message"]["content"] == partial
    assert final.data["message"]["status"] == "failed"
    stored = await stored_messages(tmp_path, database_url, events[0].data["conversation_id"])
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "completed"),
        ("assistant", "failed"),
    ]
    assert stored[1]["content"] == partial
    assert "restarted" in stored[1]["error"]
