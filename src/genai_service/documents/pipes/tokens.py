"""Tokens: a document's token spans, computed one bounded window of text at a time.

The tokenizer runs in the embedding model's process. One call on a whole document would make
it hold every token of it at once (tens of millions for a large file, gigabytes of memory that
the allocator keeps afterwards) and could not be interrupted; windows keep each call small and
quick, so a cancelled job stops between two of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio.to_thread

from genai_service.documents.pipes.chunk import approximate_token_spans
from genai_service.inference.base import EmbeddingModel, TokenSpanner

WINDOW_CHARS = 64 * 1024
"""Characters tokenized per call: about 16,000 tokens of prose."""
WORD_BOUNDARY_SEARCH_CHARS = 1024
"""How far back from a window's end a space is looked for, so words are not cut in two."""


async def token_span_windows(
    model: EmbeddingModel, text: str, *, window_chars: int = WINDOW_CHARS
) -> AsyncIterator[tuple[int, list[tuple[int, int]]]]:
    """`(end, spans)` for consecutive windows of `text`: the offset up to which `text` is
    tokenized, and the window's token spans as offsets into `text`."""
    offset = 0
    while offset < len(text):
        end = _window_end(text, offset, window_chars)
        spans = await _token_spans(model, text[offset:end])
        yield end, [(offset + start, offset + stop) for start, stop in spans]
        offset = end


def _window_end(text: str, start: int, size: int) -> int:
    """Just after the last whitespace near `start + size`; exactly there if there is none."""
    end = start + size
    if end >= len(text):
        return len(text)
    search_from = max(start + 1, end - WORD_BOUNDARY_SEARCH_CHARS)
    cut = max(text.rfind(space, search_from, end) for space in (" ", "\n", "\t"))
    return cut + 1 if cut >= search_from else end


async def _token_spans(model: EmbeddingModel, text: str) -> list[tuple[int, int]]:
    """The model's own tokens when it exposes its tokenizer; words and marks otherwise."""
    if isinstance(model, TokenSpanner):
        return await model.token_spans(text)
    return await anyio.to_thread.run_sync(approximate_token_spans, text)
