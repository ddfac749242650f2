"""Benchmark: ingestion of a generated 200-page PDF through the whole pipeline (parse, chunk,
embed in batches, upsert into the embedded Qdrant, progress in SQLite), beside embedding the
same chunks one at a time with a bare `SentenceTransformer.encode([chunk])` (and, as the ceiling
of batching on the machine, all of them in one bare `encode` call).

Run: `python -m bench.ingestion`.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import tempfile
import time
from pathlib import Path

from genai_service.documents.pipes.chunk import chunk_text
from genai_service.documents.pipes.parse import TextLimits, parse
from genai_service.documents.runner import IngestionRunner
from genai_service.documents.service import DocumentService
from genai_service.documents.sniffing import DocumentType
from genai_service.documents.storage import DocumentStorage
from genai_service.gateway.gateway import ModelGateway
from genai_service.inference.embeddings import LocalEmbeddingModel, default_model_path
from genai_service.inference.registry import ModelRegistry
from genai_service.kit.db import create_engine, create_sessionmaker
from genai_service.migrations import upgrade_database
from genai_service.models.user import ANONYMOUS_USER_ID
from genai_service.retrieval.vector_store import QdrantVectorStore
from genai_service.settings import LocalEmbeddingSettings, Settings
from tests.documents.samples import pdf_with_pages

PAGES = 200
WORDS_PER_PAGE = 250
VOCABULARY = [
    "river",
    "mountain",
    "budget",
    "invoice",
    "treaty",
    "engine",
    "protein",
    "harbour",
    "lantern",
    "orchard",
    "theorem",
    "contract",
    "signal",
    "archive",
    "glacier",
    "market",
    "harvest",
    "circuit",
    "ledger",
    "compass",
    "meadow",
    "vessel",
    "furnace",
    "canyon",
    "beacon",
    "quarry",
    "orbit",
    "saddle",
    "pepper",
    "thunder",
    "velvet",
    "walnut",
]


def generated_pdf(seed: int = 7) -> bytes:
    rng = random.Random(seed)
    pages = [
        f"Page {n}. " + " ".join(rng.choice(VOCABULARY) for _ in range(WORDS_PER_PAGE)) + "."
        for n in range(1, PAGES + 1)
    ]
    return pdf_with_pages(pages)


async def pipeline_chunks_per_s(pdf: bytes, root: Path) -> tuple[int, float]:
    settings = Settings(_env_file=None, data_dir=root / "data")
    settings.prepare_data_dir()
    engine = create_engine(settings.sqlalchemy_url)
    await upgrade_database(engine)
    sessionmaker = create_sessionmaker(engine)
    embedding = LocalEmbeddingModel(LocalEmbeddingSettings())
    models = ModelRegistry(embeddings={"minilm": embedding})
    await embedding.start()
    await embedding.embed(["warm-up"])
    store = QdrantVectorStore.from_settings(settings)
    storage = DocumentStorage(settings.documents_dir)
    try:
        async with sessionmaker() as session:
            service = DocumentService(
                session,
                storage=storage,
                store=store,
                max_upload_bytes=1 << 30,
                max_queued_bytes=None,
            )
            chunks = iter([pdf])

            async def read(_: int) -> bytes:
                return next(chunks, b"")

            document, _ = await service.upload(ANONYMOUS_USER_ID, "generated.pdf", read)
            await session.commit()
        runner = IngestionRunner(
            sessionmaker=sessionmaker,
            models=models,
            gateway=ModelGateway(models),
            store=store,
            storage=storage,
            settings=settings.documents,
        )
        started = time.perf_counter()
        await runner.run_until_idle()
        elapsed = time.perf_counter() - started
        count = await store.count(document.id)
        return count, count / elapsed
    finally:
        await store.close()
        await embedding.close()
        await engine.dispose()


def bare_encode_chunks_per_s(pdf: bytes) -> tuple[int, float, float]:
    """The same chunks through a bare `SentenceTransformer.encode`: one text per call (the
    baseline), and all of them in one call (the ceiling of batching on this machine)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)
    settings = Settings(_env_file=None)
    limits = TextLimits(
        max_chars=settings.documents.max_text_chars,
        max_page_chars=settings.documents.max_page_chars,
    )
    parsed = parse(io.BytesIO(pdf), DocumentType.PDF, limits)
    encoding = model.tokenizer(
        parsed.text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    spans = [(int(a), int(b)) for a, b in encoding["offset_mapping"] if b > a]
    texts = [
        chunk.text
        for chunk in chunk_text(
            parsed.text,
            spans,
            max_tokens=settings.documents.chunk_tokens,
            max_chars=settings.documents.chunk_chars,
            overlap=settings.documents.chunk_overlap,
            page_starts=parsed.page_starts,
        )
    ]
    model.encode([texts[0]], normalize_embeddings=True)  # warm-up
    started = time.perf_counter()
    for text in texts:
        model.encode([text], normalize_embeddings=True, show_progress_bar=False)
    one_at_a_time = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    batched = len(texts) / (time.perf_counter() - started)
    return len(texts), one_at_a_time, batched


def main() -> None:
    pdf = generated_pdf()
    with tempfile.TemporaryDirectory(prefix="genai-bench-ingest-") as root:
        count, pipeline = asyncio.run(pipeline_chunks_per_s(pdf, Path(root)))
    single_count, single, batched = bare_encode_chunks_per_s(pdf)
    assert single_count == count, (single_count, count)
    print(f"ingestion_pdf_pages {PAGES}")
    print(f"ingestion_chunks {count}")
    print(f"ingestion_pipeline_chunks_per_s {pipeline:.1f}")
    print(f"ingestion_one_at_a_time_embed_chunks_per_s {single:.1f}")
    print(f"ingestion_bare_batched_encode_chunks_per_s {batched:.1f}")
    print(f"ingestion_pipeline_over_one_at_a_time {pipeline / single:.2f}")
    print(f"ingestion_bare_batched_over_one_at_a_time {batched / single:.2f}")


if __name__ == "__main__":
    main()
