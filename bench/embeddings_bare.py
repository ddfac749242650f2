"""The embedding ceiling: one bare `encode` call of 256 texts, beside 256 concurrent single-text
`LocalEmbeddingModel.embed` calls (micro-batched, no HTTP).

Run: `python -m bench.embeddings_bare`. Each figure is the best of a few rounds after a warm-up.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence

from genai_service.inference.embeddings import LocalEmbeddingModel, default_model_path
from genai_service.inference.embeddings.encoder_process import ENCODE_BATCH_SIZE
from genai_service.settings import LocalEmbeddingSettings

TEXTS = 256
ROUNDS = 3


def benchmark_texts(count: int = TEXTS) -> list[str]:
    return [
        f"Sentence number {i} about topic {i % 17} for the embedding benchmark."
        for i in range(count)
    ]


def bare_encoder() -> Callable[[Sequence[str]], float]:
    """Load the model here, in this process; the result times one `encode` call (texts/s)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)

    def texts_per_s(texts: Sequence[str]) -> float:
        batch = list(texts)
        started = time.perf_counter()
        model.encode(
            batch, batch_size=ENCODE_BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False
        )
        return len(batch) / (time.perf_counter() - started)

    texts_per_s(["warm-up"] * ENCODE_BATCH_SIZE)
    return texts_per_s


def bare_encode_texts_per_s(texts: Sequence[str], rounds: int = ROUNDS) -> float:
    """Best of `rounds`: texts/s of one `SentenceTransformer.encode` call over all `texts`, as
    our batches call it."""
    encode = bare_encoder()
    return max(encode(texts) for _ in range(rounds))


async def _microbatched(texts: Sequence[str], rounds: int) -> float:
    model = LocalEmbeddingModel(LocalEmbeddingSettings())
    await model.start()
    try:
        await asyncio.gather(*(model.embed([text]) for text in texts))  # warm-up
        best = 0.0
        for _ in range(rounds):
            started = time.perf_counter()
            await asyncio.gather(*(model.embed([text]) for text in texts))
            best = max(best, len(texts) / (time.perf_counter() - started))
        return best
    finally:
        await model.close()


def microbatched_texts_per_s(texts: Sequence[str], rounds: int = ROUNDS) -> float:
    """Texts/s of `len(texts)` concurrent single-text `embed` calls on one `LocalEmbeddingModel`."""
    return asyncio.run(_microbatched(texts, rounds))


def main() -> None:
    texts = benchmark_texts()
    print(f"bare_encode_{TEXTS}_texts_per_s {bare_encode_texts_per_s(texts):.1f}")
    print(f"microbatched_{TEXTS}_concurrent_texts_per_s {microbatched_texts_per_s(texts):.1f}")


if __name__ == "__main__":
    main()
