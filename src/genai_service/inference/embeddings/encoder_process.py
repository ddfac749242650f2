"""The child process that holds a sentence-transformers model and encodes batches for the server.

The model runs in a process of its own, not on a thread of the server: torch keeps the GIL
for the Python side of every layer, and on a thread that contends with the event loop, which
also needs the GIL for every request it serves. Across processes they only share the CPU.
The child is spawned (never forked from a process with running threads) and imports only
what encoding needs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ENCODE_BATCH_SIZE = 64
"""Texts per forward pass inside one `encode` call. sentence-transformers sorts a call's texts by
length first, so passes of 64 keep padding low on mixed lengths while the matrices stay large."""

IDLE_CHECK_S = 1.0
IDLE_CPU_SHARE = 0.05
"""The process counts as idle when it used less than this share of a core since the last check."""
TRIM_GROWTH_BYTES = 32 * 1024 * 1024

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


def _return_memory_when_idle() -> None:
    """Give freed memory back to the system once the process is idle.

    glibc keeps what torch and the tokenizer free in its arenas (one per thread): after a large
    batch the process would stay hundreds of MiB larger for good. `malloc_trim` returns it; it
    runs only while the process uses no CPU and has grown since the last trim, so it never
    costs a busy encoder anything. (Other C libraries have no `malloc_trim`: nothing to do.)
    """
    libc_name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(libc_name) if libc_name else None
    statm = Path("/proc/self/statm")
    if libc is None or not hasattr(libc, "malloc_trim") or not statm.exists():
        return
    page_size = os.sysconf("SC_PAGE_SIZE")

    def resident_bytes() -> int:
        return int(statm.read_text().split()[1]) * page_size

    def watch() -> None:
        trimmed_at = resident_bytes()
        busy_until = time.process_time()
        while True:
            time.sleep(IDLE_CHECK_S)
            now = time.process_time()
            idle = now - busy_until < IDLE_CHECK_S * IDLE_CPU_SHARE
            busy_until = now
            if idle and resident_bytes() > trimmed_at + TRIM_GROWTH_BYTES:
                libc.malloc_trim(0)
                trimmed_at = resident_bytes()

    threading.Thread(target=watch, name="return-memory-when-idle", daemon=True).start()


def _load(path: str) -> None:
    global _model
    _exit_with_parent()
    _return_memory_when_idle()
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
    """Runs in the child: L2-normalised vectors of `texts`, in order, each read up to the
    model's window (`max_seq_length`) like sentence-transformers does."""
    vectors = _require_model().encode(
        _within_window(texts),
        batch_size=ENCODE_BATCH_SIZE,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    result: list[list[float]] = vectors.tolist()
    return result


def vocabulary() -> tuple[int, int]:
    """Runs in the child: the size of the model's vocabulary, and the special tokens it adds
    around an input."""
    tokenizer = _require_model().tokenizer
    return len(tokenizer), int(tokenizer.num_special_tokens_to_add(pair=False))


def encode_token_ids(inputs: list[list[int]]) -> list[list[float]]:
    """Runs in the child: L2-normalised vectors of inputs given as token ids of the model's
    vocabulary, with the special tokens the model adds around text."""
    import torch

    model = _require_model()
    tokenizer = model.tokenizer
    prefix, suffix = _special_affixes()
    sequences = [[*prefix, *ids, *suffix] for ids in inputs]
    longest = max(len(ids) for ids in sequences)
    pad = tokenizer.pad_token_id or 0
    input_ids = torch.tensor([ids + [pad] * (longest - len(ids)) for ids in sequences])
    mask = torch.tensor([[1] * len(ids) + [0] * (longest - len(ids)) for ids in sequences])
    features = {"input_ids": input_ids, "attention_mask": mask}
    if "token_type_ids" in tokenizer.model_input_names:
        features["token_type_ids"] = torch.zeros_like(input_ids)
    with torch.inference_mode():
        vectors = torch.nn.functional.normalize(model(features)["sentence_embedding"], p=2, dim=1)
    result: list[list[float]] = vectors.tolist()
    return result


def _special_affixes() -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text's own (`[CLS]` ... `[SEP]`)."""
    tokenizer = _require_model().tokenizer
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain) :])
    raise RuntimeError("the tokenizer's special tokens do not surround a text")


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


COUNT_PIECE_CHARS = 1000
"""Characters given to the tokenizer at a time when counting: its memory grows with the text of
one call (10 MB of punctuation took 5 GB and 22 s), and counting stops past the window anyway."""
COUNT_BATCH_PIECES = 64
MAX_CHARS_PER_TOKEN = 128
"""Characters read per token of the window at most: a text whose window's worth of tokens is
spread over more (whitespace padding, megabytes of it) counts as longer than the window instead
of being read to its end."""


def max_input_tokens() -> int:
    """Runs in the child: the most tokens of a text the model reads, special tokens included."""
    window = _require_model().max_seq_length
    if window is None:
        raise RuntimeError("the embedding model declares no max_seq_length")
    return window


def count_tokens(texts: list[str]) -> list[int]:
    """Runs in the child: the tokens of each text as the model reads it, special tokens
    included, counted up to `max_input_tokens() + 1` (what a longer text counts)."""
    return [count for count, _ in _read_extents(texts)]


def _within_window(texts: list[str]) -> list[str]:
    """Long texts cut a little past the end of what the model reads, so that tokenising them
    for `encode` costs no more than a text of the window's length."""
    long = [index for index, text in enumerate(texts) if len(text) > COUNT_PIECE_CHARS]
    if not long:
        return texts
    cut = list(texts)
    for index, (_, end) in zip(long, _read_extents([texts[i] for i in long]), strict=True):
        cut[index] = texts[index][:end]
    return cut


def _read_extents(texts: list[str]) -> list[tuple[int, int]]:
    """For each text: its tokens up to the window plus one, and where in the text counting
    stopped. Texts are tokenised a piece at a time, pieces cut before a whitespace, so the count
    is exact for tokenizers that split words at whitespace (WordPiece, as MiniLM's) — except
    that a run of more than `COUNT_PIECE_CHARS` without whitespace may count a few tokens more,
    and a text read for `MAX_CHARS_PER_TOKEN` characters per token of the window without
    reaching its end or the window counts as longer than the window."""
    tokenizer = _require_model().tokenizer
    cap = max_input_tokens() + 1
    budget = cap * MAX_CHARS_PER_TOKEN
    counts = [int(tokenizer.num_special_tokens_to_add(pair=False))] * len(texts)
    ends = [0] * len(texts)
    unfinished = list(range(len(texts)))
    while unfinished:
        pieces: list[str] = []
        for index in unfinished:
            start, ends[index] = ends[index], _piece_end(texts[index], ends[index])
            pieces.append(texts[index][start : ends[index]])
        for offset in range(0, len(pieces), COUNT_BATCH_PIECES):
            batch = pieces[offset : offset + COUNT_BATCH_PIECES]
            ids = tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]
            batch_indexes = unfinished[offset : offset + COUNT_BATCH_PIECES]
            for index, piece_ids in zip(batch_indexes, ids, strict=True):
                counts[index] += len(piece_ids)
        unfinished = [i for i in unfinished if ends[i] < len(texts[i]) and counts[i] < cap]
        for index in unfinished:
            if ends[index] >= budget:
                counts[index] = cap
        unfinished = [i for i in unfinished if counts[i] < cap]
    return [(min(count, cap), end) for count, end in zip(counts, ends, strict=True)]


def _piece_end(text: str, start: int) -> int:
    """The end of the next piece of `text` from `start`: at most `COUNT_PIECE_CHARS` on, before
    a whitespace so no word is cut (a longer run without whitespace is cut where it must be)."""
    end = start + COUNT_PIECE_CHARS
    if end >= len(text):
        return len(text)
    for cut in range(end, start, -1):
        if text[cut].isspace():
            return cut
    return end
