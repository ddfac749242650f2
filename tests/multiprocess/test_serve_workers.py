"""`genai-service serve --workers 2` on PostgreSQL and Redis: the workers migrate a new
database once between them (under the advisory lock), each runs its own generation runner, and
no turn is written twice — whichever worker the connections of a turn, its events and its
cancel land on.

No Qdrant server can run here, and an embedded Qdrant folder belongs to one process: the web
tier is pointed at a Qdrant URL nobody answers, and readiness reports exactly that.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conversations.support import LONG_REPLY, SLOW_CHAT_MODEL, parse_sse
from tests.live_server import LiveServer, free_port
from tests.multiprocess.conftest import ModelHost
from tests.multiprocess.harness import (
    drop_database,
    fetch_value,
    new_database,
    register,
    shared_env,
    sse_lines,
    started,
    stopped,
)
from tests.multiprocess.test_two_processes import new_conversation, read_events
from tests.polling import wait_until

TURNS = 6


def ready_but_for_qdrant(response: httpx.Response) -> bool:
    if response.status_code == 200:
        return True
    checks = response.json().get("checks", {})
    return bool(checks) and {name for name, ok in checks.items() if not ok} == {"vector_store"}


@pytest.fixture(scope="module")
async def workers(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin_url: str,
    redis_url: str,
    model_host: ModelHost,
) -> AsyncIterator[tuple[LiveServer, str]]:
    data_dir = Path(tmp_path_factory.mktemp("workers")) / "data"
    database_url = await new_database(postgres_admin_url)
    env = shared_env(
        data_dir, database_url, redis_url, f"workers-{uuid.uuid4().hex[:8]}:", model_host.url
    )
    env["GENAI_VECTORS__URL"] = f"http://127.0.0.1:{free_port()}"
    server = LiveServer(
        data_dir, env, name="workers", args=["--workers", "2"], ready=ready_but_for_qdrant
    )
    try:
        await started(server)
        yield server, database_url
    finally:
        await stopped(server)
        await drop_database(postgres_admin_url, database_url)


async def test_two_workers_migrate_once_and_start_one_runner_each(
    workers: tuple[LiveServer, str],
) -> None:
    server, database_url = workers

    def started_workers() -> int:
        return len(re.findall(r"genai-service \S+ started", server.log_path.read_text()))

    await wait_until(lambda: started_workers() >= 2, within=60)
    log = server.log_path.read_text()
    assert started_workers() == 2
    upgrades = re.findall(r"Running upgrade (\S*) -> (\S+)", log)
    assert upgrades, log[-3000:]
    assert len(upgrades) == len(set(upgrades))  # each revision applied by one worker only
    assert await fetch_value(database_url, "SELECT count(*) FROM alembic_version") == 1
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        ready = (await http.get("/readyz")).json()
    assert ready["checks"]["redis"] is True
    assert ready["checks"]["database"] is True


async def test_turns_resumed_and_cancelled_over_new_connections_are_written_once(
    workers: tuple[LiveServer, str],
) -> None:
    """Every request opens a connection of its own, so the two workers share them out; with
    the events and cancels in Redis, none answers 410 or 409 for a turn the other writes."""
    server, database_url = workers
    url = server.base_url
    alice = await register(url, "alice")

    async def one_turn(index: int) -> tuple[str, str]:
        conversation = await new_conversation(url, alice, model=SLOW_CHAT_MODEL)
        path = f"/api/conversations/{conversation}/messages"
        body = {"content": f"turn {index}", "stream": True}
        async with sse_lines(url, "POST", path, json=body, headers=alice.headers) as (
            response,
            lines,
        ):
            generation_id = response.headers["X-Generation-ID"]
            seen = await read_events(lines, 3)
        resume = {**alice.headers, "Last-Event-ID": str(seen[-1].id)}
        if index % 2:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                cancelled = await http.post(
                    f"/api/generations/{generation_id}/cancel", headers=alice.headers
                )
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            return conversation, "cancelled"
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            rest = await http.get(f"/api/generations/{generation_id}/events", headers=resume)
        assert rest.status_code == 200, rest.text
        events, _ = parse_sse(rest.text)
        assert events[0].id == seen[-1].id + 1
        assert events[-1].data["message"]["content"] == LONG_REPLY
        return conversation, "completed"

    outcomes = await asyncio.gather(*(one_turn(index) for index in range(TURNS)))
    for conversation, status in outcomes:
        stored = await fetch_value(
            database_url,
            "SELECT string_agg(status::text, ',') FROM messages "
            "WHERE conversation_id = $1 AND role = 'assistant'",
            uuid.UUID(conversation),
        )
        assert stored == status
