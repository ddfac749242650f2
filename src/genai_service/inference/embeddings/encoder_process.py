"""The child process that holds a sentence-transformers model and encodes batches for the server.

The model runs in a process of its own, not on a thread of the server: torch keeps the GIL
for the Python side of every layer, and on a thread that contends with the event loop, which
also needs the GIL for every request it serves. Across processes they only share the CPU.
The child is spawned (never forked from a process with running threads) and imports only
what encoding needs.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ENCODE_BATCH_SIZE = 64
"""Texts per forward pass inside one `encode` call. sentence-transformers sorts a call's texts by
length first, so passes of 64 keep padding low on mixed lengths while the matrices stay large."""

_model: SentenceTransformer | None = None
"""The child's model, loaded once by `_load` when the process starts."""


def _exit_with_parent() -> None:
    """End this process when the server that spawned it dies, however it dies.

    The pool's task queue does not tell a worker: the worker holds both ends of the queue's
    pipe, so it waits for work forever. A server killed outright (SIGKILL, out of memory) would
    leave its encoder behind, holding the model in memory.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _load(path: str) -> None:
    global _model
    _exit_with_parent()
    # Nothing is ever downloaded: the model is a local folder and the hub stays offline.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # torch's OpenMP threads keep their default wait policy (a short spin, then sleep).
    # OMP_WAIT_POLICY=PASSIVE would free the cores between parallel regions a little sooner,
    # but measured about 15% fewer texts/s under a burst (bench/embeddings.py).
    from sentence_transformers import SentenceTransformer  # the optional `local` extra

    _model = SentenceTransformer(path, device="cpu", local_files_only=True)


def _require_model() -> SentenceTransformer:
    if _model is None:
        raise RuntimeError("the encoder process has no model")
    return _model


def dimension() -> int:
    """Runs in the child: the length of the model's vectors."""
    model = _require_model()
    size = model.get_embedding_dimension()
    return size if size is not None else len(encode(["dimension"])[0])


def encode(texts: list[str]) -> list[list[float]]:
    """Runs in the child: L2-normalised vectors of `texts`, in order."""
    vectors = _require_model().encode(
        texts,
        batch_size=ENCODE_BATCH_SIZE,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    result: list[list[float]] = vectors.tolist()
    return result


def token_spans(text: str) -> list[tuple[int, int]]:
    """Runs in the child: `(start, end)` character offsets of each of the model's tokens."""
    encoding = _require_model().tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    return [(int(start), int(end)) for start, end in encoding["offset_mapping"] if end > start]


def spawn_encoder(path: Path) -> ProcessPoolExecutor:
    """A one-process pool whose process loads the model at `path` before its first task."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_load,
        initargs=(str(path),),
    )
