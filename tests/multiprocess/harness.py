"""Several real genai-service processes sharing one PostgreSQL database and one Redis, pointed
at one model host — the topology of docs/deployment.md, "Several processes".

The model host is the app with the deterministic scripted models, served on a loopback port
from this test process; the web processes (`genai-service serve`) and the ingestion process
(`genai-service worker`) reach it through the `openai_compatible` provider, as web workers
reach a model host or vLLM. All share one data dir (uploads are read by whichever process
ingests them); each opens a Qdrant folder of its own, as an embedded Qdrant belongs to one
process.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL, PRODUCTION_SECRET
from tests.conversations.support import SLOW_CHAT_MODEL
from tests.identity import PASSWORD, Account, unique_email
from tests.live_server import LiveServer

WORKER_STOP_TIMEOUT_S = 30


def provider(model_host_url: str, model: str) -> list[dict[str, Any]]:
    return [
        {
            "kind": "openai_compatible",
            "base_url": f"{model_host_url}/v1",
            "api_key": "anonymous",
            "model": model,
            "max_retries": 0,
        }
    ]


def shared_env(
    data_dir: Path, database_url: str, redis_url: str, redis_prefix: str, model_host_url: str
) -> dict[str, str]:
    """What every process of the deployment is started with."""
    chat = {name: provider(model_host_url, name) for name in (FAKE_CHAT_MODEL, SLOW_CHAT_MODEL)}
    embeddings = {FAKE_EMBEDDING_MODEL: provider(model_host_url, FAKE_EMBEDDING_MODEL)}
    return {
        "GENAI_CONFIG": os.devnull,
        "GENAI_DATA_DIR": str(data_dir),
        "GENAI_DATABASE_URL": database_url,
        "GENAI_SECRET_KEY": PRODUCTION_SECRET,
        "GENAI_REDIS__URL": redis_url,
        "GENAI_REDIS__KEY_PREFIX": redis_prefix,
        "GENAI_INFERENCE__CHAT_MODELS": json.dumps(chat),
        "GENAI_INFERENCE__EMBEDDING_MODELS": json.dumps(embeddings),
        "GENAI_INFERENCE__DEFAULT_CHAT_MODEL": FAKE_CHAT_MODEL,
        "GENAI_INFERENCE__DEFAULT_EMBEDDING_MODEL": FAKE_EMBEDDING_MODEL,
        "GENAI_DOCUMENTS__RUN_INGESTION": "false",
        "GENAI_DOCUMENTS__POLL_SECONDS": "0.5",
        "GENAI_CONVERSATIONS__HEARTBEAT_SECONDS": "1",
    }


def web_process(data_dir: Path, env: dict[str, str], name: str, *args: str) -> LiveServer:
    own = {"GENAI_VECTORS__LOCAL_PATH": str(data_dir / f"qdrant-{name}")}
    return LiveServer(data_dir, {**env, **own}, name=name, args=args)


class WorkerProcess:
    """`genai-service worker`: claims queued documents and ingests them."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.log_path = data_dir / "worker.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_")},
            **env,
            "GENAI_VECTORS__LOCAL_PATH": str(data_dir / "qdrant-worker"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "genai_service", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=WORKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


async def new_database(admin_url: str) -> str:
    name = f"multi_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(admin_url: str, database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def fetch_value(database_url: str, query: str, *args: object) -> Any:
    connection = await asyncpg.connect(
        database_url.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def register(base_url: str, name: str) -> Account:
    """A new account, registered and logged in through the API of one process."""
    email = unique_email(name)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        created = await http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        assert created.status_code == 201, created.text
        tokens = await http.post("/api/auth/token", data={"username": email, "password": PASSWORD})
        assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return Account(
        id=created.json()["id"],
        email=email,
        password=PASSWORD,
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


async def started(*servers: LiveServer) -> None:
    """Start the processes together (off the event loop, which serves the model host)."""
    await asyncio.gather(*(asyncio.to_thread(server.start) for server in servers))


async def stopped(*servers: LiveServer) -> None:
    await asyncio.gather(*(asyncio.to_thread(server.stop) for server in servers))


@asynccontextmanager
async def sse_lines(
    base_url: str, method: str, path: str, **kwargs: Any
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[str]]]:
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
        http.stream(method, path, **kwargs) as response,
    ):
        yield response, response.aiter_lines()
