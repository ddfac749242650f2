"""Chunk: text cut into overlapping windows of tokens, each a span of the extracted text."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

TokenSpans = Sequence[tuple[int, int]]

_WORDS_AND_MARKS = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    start: int
    end: int
    """`text == extracted_text[start:end]`, always."""
    page: int | None
    """1-based page of `start`; `None` for formats without pages."""
    text: str


def approximate_token_spans(text: str) -> list[tuple[int, int]]:
    """Words and punctuation marks: a stand-in tokenizer for models that do not expose theirs
    (remote models). Word-piece tokenizers split words further, so leave headroom in
    `chunk_tokens` for them."""
    return [match.span() for match in _WORDS_AND_MARKS.finditer(text)]


class Chunker:
    """Cuts a stream of token spans into chunks of at most `max_tokens` tokens and `max_chars`
    characters, each sharing up to `overlap` tokens with the one before.

    Spans arrive a window at a time (`add`) and a chunk is handed out as soon as it is complete,
    so only the tokens of the chunk being built are held, never a whole document's. A chunk
    runs from its first token's start to its last token's end: it never cuts a token (except
    one longer than `max_chars`, which is cut into pieces of that length: a tokenizer makes one
    unknown token of a run of text without word boundaries) and its text is exactly
    `text[start:end]`.

    A chunk cut short by `max_chars` shares proportionally fewer tokens with the next, so text
    of long tokens is not embedded many times over.
    """

    def __init__(
        self,
        text: str,
        *,
        max_tokens: int,
        max_chars: int,
        overlap: int,
        page_starts: Sequence[int] | None = None,
    ) -> None:
        if overlap >= max_tokens:
            raise ValueError("overlap must be smaller than max_tokens")
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        self._text = text
        self._max_tokens = max_tokens
        self._max_chars = max_chars
        self._overlap = overlap
        self._page_starts = page_starts
        self._pending: list[tuple[int, int]] = []
        self._count = 0
        self._covered_until = 0

    @property
    def count(self) -> int:
        """Chunks handed out so far."""
        return self._count

    def add(self, spans: Iterable[tuple[int, int]]) -> list[Chunk]:
        """The chunks completed by the next spans (in order, after those already added)."""
        self._pending.extend(_bounded(spans, self._max_chars))
        return self._take(final=False)

    def finish(self) -> list[Chunk]:
        """The chunks of the spans left once no more will come."""
        return self._take(final=True)

    def _take(self, *, final: bool) -> list[Chunk]:
        chunks: list[Chunk] = []
        pending = self._pending
        while pending:
            if pending[-1][1] <= self._covered_until:  # only the overlap of the last chunk left
                if final:
                    pending.clear()
                break
            last = self._last_token_of_chunk()
            if not final and last + 1 == len(pending) and last + 1 < self._max_tokens:
                break  # more tokens may still join this chunk
            chunks.append(self._chunk(last))
            shared = min(self._overlap, (last + 1) * self._overlap // self._max_tokens)
            del pending[: last + 1 - shared]
        return chunks

    def _last_token_of_chunk(self) -> int:
        pending = self._pending
        start = pending[0][0]
        limit = min(len(pending), self._max_tokens)
        last = 0
        while last + 1 < limit and pending[last + 1][1] - start <= self._max_chars:
            last += 1
        return last

    def _chunk(self, last: int) -> Chunk:
        start, end = self._pending[0][0], self._pending[last][1]
        chunk = Chunk(
            index=self._count,
            start=start,
            end=end,
            page=_page_of(start, self._page_starts),
            text=self._text[start:end],
        )
        self._count += 1
        self._covered_until = end
        return chunk


def chunk_text(
    text: str,
    spans: TokenSpans,
    *,
    max_tokens: int,
    max_chars: int,
    overlap: int,
    page_starts: Sequence[int] | None = None,
) -> list[Chunk]:
    """Every chunk of `text` at once (see `Chunker`)."""
    chunker = Chunker(
        text, max_tokens=max_tokens, max_chars=max_chars, overlap=overlap, page_starts=page_starts
    )
    return [*chunker.add(spans), *chunker.finish()]


def _bounded(spans: Iterable[tuple[int, int]], max_chars: int) -> Iterator[tuple[int, int]]:
    for start, end in spans:
        while end - start > max_chars:
            yield start, start + max_chars
            start += max_chars
        yield start, end


def _page_of(offset: int, page_starts: Sequence[int] | None) -> int | None:
    if page_starts is None:
        return None
    return max(1, bisect.bisect_right(page_starts, offset))
