"""Chunk: text cut into overlapping windows of tokens, each a span of the extracted text."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
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


def chunk_text(
    text: str,
    spans: TokenSpans,
    *,
    max_tokens: int,
    overlap: int,
    page_starts: Sequence[int] | None = None,
) -> list[Chunk]:
    """Windows of at most `max_tokens` tokens, each sharing `overlap` tokens with the previous.

    A chunk runs from its first token's start to its last token's end, so it never cuts a token
    and its text is exactly `text[start:end]`. (CPU work on long documents: call it from a
    worker thread.)
    """
    if overlap >= max_tokens:
        raise ValueError("overlap must be smaller than max_tokens")
    chunks: list[Chunk] = []
    step = max_tokens - overlap
    first = 0
    while first < len(spans):
        last = min(first + max_tokens, len(spans)) - 1
        start, end = spans[first][0], spans[last][1]
        chunks.append(
            Chunk(
                index=len(chunks),
                start=start,
                end=end,
                page=_page_of(start, page_starts),
                text=text[start:end],
            )
        )
        if last == len(spans) - 1:
            break
        first += step
    return chunks


def _page_of(offset: int, page_starts: Sequence[int] | None) -> int | None:
    if page_starts is None:
        return None
    return max(1, bisect.bisect_right(page_starts, offset))
