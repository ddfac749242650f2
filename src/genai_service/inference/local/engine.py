"""The engine thread: owns the llama.cpp model and context, and runs continuous batching.

Every round it retires cancelled sequences, admits waiting requests into free sequence slots,
and makes one `llama_decode` call over a shared batch: one token for each sequence that is
generating, then prompt chunks of sequences still being prefilled, up to `n_batch` tokens.
A sequence that finishes or is cancelled leaves at once; its slot keeps the KV cache for a later
prompt that starts the same way (`prefix_cache`). The context and its KV-cache layout:
`decode_context`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from genai_service.inference.base import (
    FinishReason,
    ModelNotReady,
    ModelOverloaded,
    ProviderError,
    Usage,
)
from genai_service.inference.local.decode_context import (
    DecodeContext,
    available_cores,
    open_decode_context,
)
from genai_service.inference.local.job import Failed, Finished, GenerationJob
from genai_service.inference.local.native import free_model, load_model
from genai_service.inference.local.prefix_cache import Placement, PrefixCache
from genai_service.inference.local.sequence import ActiveSequence
from genai_service.inference.local.thread_tuner import ThreadTuner, thread_choices
from genai_service.inference.local.vocabulary import Vocabulary
from genai_service.kit.errors import AppError
from genai_service.settings import LocalChatSettings

_RETRY_AFTER_MAX_S = 60
_DURATION_SMOOTHING = 0.2


@dataclass(frozen=True, slots=True)
class EngineStats:
    active: int
    """Sequences holding a slot (being prefilled or generating)."""
    queued: int
    """Requests waiting for a slot."""
    decode_steps: int
    """`llama_decode` calls so far; sequences decoded together share a step."""
    generated_tokens: int
    prompt_tokens: int
    """Prompt tokens of the requests admitted so far."""
    reused_tokens: int
    """Of those, tokens whose KV cache was reused from an earlier or a running sequence."""
    threads: int
    """llama.cpp threads decode steps use now (see `thread_tuner`)."""


class LlamaEngine:
    def __init__(self, settings: LocalChatSettings, model_path: Path) -> None:
        self._settings = settings
        self._model_path = model_path
        self._cond = threading.Condition()
        # Guarded by _cond:
        self._pending: deque[GenerationJob] = deque()
        self._cancelled: set[GenerationJob] = set()
        self._free_slots = set(range(settings.n_seq_max))
        self._running = False
        self._closing = False
        self._decode_steps = 0
        self._generated_tokens = 0
        self._prompt_tokens = 0
        self._reused_tokens = 0
        self._mean_duration_s = 5.0
        # Engine thread only (after start):
        self._active: dict[int, ActiveSequence] = {}
        self._prefixes = PrefixCache(settings.n_seq_max, enabled=settings.reuse_prefixes)
        self._threads = ThreadTuner(
            [settings.n_threads] if settings.n_threads else thread_choices(available_cores())
        )
        self._copies: dict[int, tuple[int, int, GenerationJob]] = {}
        """Sequences waiting to copy a shared prefix from a running one: by slot, the source's
        slot, the tokens to copy and the source's job."""
        self._thread: threading.Thread | None = None
        self._context_window = settings.n_ctx

    @property
    def ready(self) -> bool:
        with self._cond:
            return self._running and not self._closing

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def stats(self) -> EngineStats:
        with self._cond:
            return EngineStats(
                active=self._settings.n_seq_max - len(self._free_slots),
                queued=len(self._pending),
                decode_steps=self._decode_steps,
                generated_tokens=self._generated_tokens,
                prompt_tokens=self._prompt_tokens,
                reused_tokens=self._reused_tokens,
                threads=self._threads.current,
            )

    def start(self) -> None:
        """Load the model and start the engine thread. Blocks: call it from a worker thread."""
        self._model = load_model(self._model_path)
        try:
            self._vocabulary = Vocabulary(self._model)
            self._create_context()
        except BaseException:
            free_model(self._model)
            raise
        with self._cond:
            self._running = True
        self._thread = threading.Thread(target=self._run, name="llama-engine", daemon=True)
        self._thread.start()

    def _create_context(self) -> None:
        self._decoder: DecodeContext = open_decode_context(self._model, self._settings)
        self._context_window = self._decoder.window
        logger.info(
            "llama.cpp engine: {} sequences x {} tokens, batch {}, {} threads{}",
            self._settings.n_seq_max,
            self._decoder.window,
            self._decoder.capacity,
            self._decoder.threads,
            "" if self._settings.n_threads else " (tuned while serving)",
        )

    def submit(self, job: GenerationJob) -> None:
        """Queue a job for a slot. Thread-safe; never blocks on the model."""
        with self._cond:
            if not self._running or self._closing:
                raise ModelNotReady("the local chat model is not loaded")
            waiting_beyond_free_slots = len(self._pending) - len(self._free_slots)
            if waiting_beyond_free_slots >= self._settings.max_queue:
                raise ModelOverloaded(
                    f"the local chat model is busy: {self._settings.n_seq_max} replies in "
                    f"progress and {waiting_beyond_free_slots} requests waiting",
                    retry_after=self._retry_after(waiting_beyond_free_slots),
                )
            self._pending.append(job)
            self._cond.notify()

    def _retry_after(self, waiting: int) -> int:
        """Seconds until the queue has likely moved by one, from how long sequences hold a slot."""
        rounds = (max(0, waiting) + 1) / self._settings.n_seq_max
        return max(1, min(_RETRY_AFTER_MAX_S, math.ceil(self._mean_duration_s * rounds)))

    def cancel(self, job: GenerationJob) -> None:
        """Drop a job; if it holds a slot, the slot is freed before the next decode step."""
        with self._cond:
            try:
                self._pending.remove(job)
            except ValueError:
                self._cancelled.add(job)
                self._cond.notify()

    def close(self) -> None:
        """Stop admitting, end all jobs with "cancelled", join the thread, free the model."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        self._decoder.close()
        free_model(self._model)

    def _run(self) -> None:
        error: AppError | None = None
        try:
            while self._prepare_round():
                self._step()
        except Exception:
            logger.exception("the llama.cpp engine thread failed")
            error = ProviderError("the local chat engine stopped unexpectedly")
        self._end_all(error)

    def _prepare_round(self) -> bool:
        """Wait for work; retire cancelled sequences and admit waiting jobs. False: shut down."""
        with self._cond:
            while not (self._closing or self._pending or self._cancelled or self._active):
                self._cond.wait()
            if self._closing:
                return False
            cancelled, self._cancelled = self._cancelled, set()
            admitted: list[GenerationJob] = []
            while self._pending and len(admitted) < len(self._free_slots):
                admitted.append(self._pending.popleft())
            free = set(self._free_slots)
        for sequence in [s for s in self._active.values() if s.job in cancelled]:
            self._retire(sequence, None)
        for job in admitted:
            running = {slot: sequence.job.prompt for slot, sequence in self._active.items()}
            placement = self._prefixes.place(job.prompt, free, running)
            free.discard(placement.slot)
            with self._cond:
                self._free_slots.discard(placement.slot)
            self._admit(job, placement)
        return True

    def _admit(self, job: GenerationJob, placement: Placement) -> None:
        slot = placement.slot
        if placement.move_held_to is not None:
            self._decoder.copy(slot, placement.move_held_to, len(self._prefixes.held(slot)))
            self._prefixes.move(slot, placement.move_held_to)
        # Copies between slots are queued in order and done before the next decode computes.
        reused = 0 if placement.copy_from is not None else placement.reuse
        if placement.copy_held_from is not None:
            self._decoder.copy(placement.copy_held_from, slot, reused)
        elif reused:
            self._decoder.trim(slot, reused)
        else:
            self._decoder.clear(slot)
        self._prefixes.forget(slot)
        try:
            sequence = ActiveSequence(job, slot, self._vocabulary, reused=reused)
        except AppError as error:  # its grammar does not compile: the request is refused
            with self._cond:
                self._free_slots.add(slot)
            job.sink(Failed(error))
            return
        self._active[slot] = sequence
        if placement.copy_from is not None:
            source = placement.copy_from
            self._copies[slot] = (source, placement.reuse, self._active[source].job)
        with self._cond:
            self._prompt_tokens += len(job.prompt)
            self._reused_tokens += sequence.prefilled

    def _copy_shared_prefixes(self) -> None:
        """Give waiting sequences the prefix their source has computed by now; a source that
        left before computing it leaves its sequence to compute the prompt itself."""
        for slot, (source_slot, count, source_job) in list(self._copies.items()):
            source = self._active.get(source_slot)
            if source is not None and source.job is source_job:
                if len(source.cached) < count:
                    continue  # still being computed
                self._decoder.copy(source_slot, slot, count)
                self._active[slot].reuse(count)
                with self._cond:
                    self._reused_tokens += count
            del self._copies[slot]

    def _step(self) -> None:
        if not self._active:
            return
        self._copy_shared_prefixes()
        decoder = self._decoder
        batch = decoder.batch
        batch.n_tokens = 0
        # Every generating sequence gets its next token; prompts share what is left of the batch.
        budget = decoder.capacity - sum(not s.prefilling for s in self._active.values())
        outputs: list[tuple[ActiveSequence, int]] = []
        participants: list[ActiveSequence] = []
        # In slot order: see `decode_context` on how llama.cpp splits a batch.
        for slot in sorted(self._active):
            sequence = self._active[slot]
            if not sequence.prefilling:
                token, position = sequence.take_last_token()
                index = decoder.add(token, position, slot)
                outputs.append((sequence, index))
                participants.append(sequence)
                continue
            if budget == 0 or slot in self._copies:
                continue
            start, chunk = sequence.take_prompt_chunk(budget)
            for offset, token in enumerate(chunk):
                decoder.add(token, start + offset, slot, logits=False)
            budget -= len(chunk)
            participants.append(sequence)
            if not sequence.prefilling:
                last = batch.n_tokens - 1
                batch.logits[last] = 1
                outputs.append((sequence, last))
        decoder.use_threads(self._threads.threads)
        started = time.perf_counter()
        status = decoder.decode()
        self._threads.observe(batch.n_tokens, time.perf_counter() - started)
        if status != 0:
            failure = ProviderError(f"llama.cpp failed to decode a batch (status {status})")
            for sequence in participants:
                self._retire(sequence, None, failure)
            return
        generated = 0
        leaving: list[tuple[ActiveSequence, FinishReason | None]] = []
        for sequence, index in outputs:
            before = sequence.generated
            reason = sequence.sample(decoder.context, index)
            generated += sequence.generated - before
            if reason is not None or not sequence.listening:
                leaving.append((sequence, reason))
        with self._cond:
            self._decode_steps += 1
            self._generated_tokens += generated
        for sequence, reason in leaving:
            self._retire(sequence, reason)

    def _retire(
        self,
        sequence: ActiveSequence,
        reason: FinishReason | None,
        error: AppError | None = None,
    ) -> None:
        """Free the slot; tell the consumer why, unless it cancelled (`reason` and `error` None).

        The slot keeps the sequence's KV cache for a later prompt with the same start, unless
        the sequence failed (its last decode may not have happened).
        """
        if error is None:
            self._prefixes.hold(sequence.slot, sequence.cached)
        else:
            self._decoder.clear(sequence.slot)
            self._prefixes.forget(sequence.slot)
        sequence.free()
        del self._active[sequence.slot]
        self._copies.pop(sequence.slot, None)
        duration = time.monotonic() - sequence.admitted_at
        with self._cond:
            self._free_slots.add(sequence.slot)
            self._mean_duration_s += _DURATION_SMOOTHING * (duration - self._mean_duration_s)
        if error is not None:
            sequence.fail(error)
        elif reason is not None:
            sequence.finish(reason)

    def _end_all(self, error: AppError | None) -> None:
        for sequence in list(self._active.values()):
            self._retire(sequence, "cancelled", error)
        with self._cond:
            self._running = False
            pending, self._pending = list(self._pending), deque()
        for job in pending:
            if error is not None:
                job.sink(Failed(error))
            else:
                job.sink(Finished("cancelled", Usage(len(job.prompt), 0)))
