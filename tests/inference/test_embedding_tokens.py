"""The embedded model counts its own tokens in its process, in bounded work: exact for text,
and a hostile 10 MB input is counted (and embedded) as cheaply as a long one."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from genai_service.inference.embeddings import LocalEmbeddingModel, default_model_path
from genai_service.settings import LocalEmbeddingSettings

pytestmark = pytest.mark.integration

WINDOW = 256
HOSTILE = {
    "punctuation": "." * 10_000_000,
    "whitespace padding": "a" + " " * 10_000_000 + "b",
    "one endless word": "x" * 10_000_000,
    "plain words": "hello world " * 800_000,
}


@pytest.fixture(scope="module")
async def minilm() -> AsyncIterator[LocalEmbeddingModel]:
    model = LocalEmbeddingModel(LocalEmbeddingSettings(max_wait_ms=20))
    await model.start()
    try:
        yield model
    finally:
        await model.close()


def peak_memory_mib(pid: int) -> float:
    """The most memory the process has held so far (`VmHWM`)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def test_counts_are_the_tokenizers_and_stop_past_the_window(
    minilm: LocalEmbeddingModel,
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    texts = [
        "",
        "Hello, world!",
        "Crème brûlée in 東京, naïvely: isn't it antidisestablishmentarianism?",
        " ".join(["word"] * 200) + "\n" + "tail " * 60,
        "spaced    out\t\ttext\n\n" * 40,
    ]
    expected = [min(len(tokenizer(t, verbose=False)["input_ids"]), WINDOW + 1) for t in texts]
    assert minilm.max_input_tokens == WINDOW
    assert await minilm.count_tokens(texts) == expected
    # Concurrent calls are answered from shared calls of the encoder process.
    singles = await asyncio.gather(*(minilm.count_tokens([text]) for text in texts * 10))
    assert [count for [count] in singles] == expected * 10


async def test_hostile_inputs_cost_no_more_than_a_long_one(minilm: LocalEmbeddingModel) -> None:
    [encoder] = [child for child in multiprocessing.active_children() if child.pid]
    assert encoder.pid is not None
    before = peak_memory_mib(encoder.pid)
    started = time.monotonic()
    assert await minilm.count_tokens(list(HOSTILE.values())) == [WINDOW + 1] * len(HOSTILE)
    vectors = await minilm.embed(list(HOSTILE.values()))
    elapsed = time.monotonic() - started
    assert [len(vector) for vector in vectors] == [384] * len(HOSTILE)
    # Tokenising 10 MB of punctuation whole took 5 GB and 22 s.
    assert peak_memory_mib(encoder.pid) - before < 300
    assert elapsed < 10
