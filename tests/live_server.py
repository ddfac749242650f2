"""A real genai-service process on a loopback port, for tests that use real HTTP clients."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from genai_service.serving import server_options

READY_TIMEOUT_S = 120
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        *,
        module: Sequence[str] = ("genai_service", "serve"),
        name: str = "server",
        args: Sequence[str] = (),
        ready: Callable[[httpx.Response], bool] | None = None,
    ) -> None:
        """`module`: what `python -m` runs (it takes `--port`); default `genai-service serve`.
        `name`: of its log file in `data_dir` (processes may share one data dir); `args`: more
        options (such as `--workers 2`); `ready`: when a `/readyz` answer means started
        (default: a 200)."""
        self.module = list(module)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"{name}.log"
        self.args = list(args)
        self.ready = ready or (lambda response: response.status_code == 200)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_")},
            "GENAI_DATA_DIR": str(data_dir),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *self.module, "--port", str(self.port), *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()[-4000:]}")
            try:
                if self.ready(httpx.get(f"{self.base_url}/readyz", timeout=2)):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"server not ready in time:\n{self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: the process ends at once, running nothing on its way out."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


class ThreadedServer:
    """An app built in the test (fake models, say), served by a real uvicorn on a loopback port
    from a thread of this process, with the options `genai-service serve` uses.

    The app's lifespan and every request run on the server thread's event loop; `run` hands a
    coroutine (such as inserting a user) to that loop.
    """

    def __init__(self, app: FastAPI, **options: Any) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, **{**server_options(), **options}
        )
        self.server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.server.serve()

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread ended before it started serving")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start in time")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=60)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)
