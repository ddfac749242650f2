"""Hostile input in the pipeline itself: text counted while it is read, PDF pages read one at a
time, chunks bounded in characters as well as tokens, tokenizing one window at a time."""

from __future__ import annotations

import io
import itertools
import math
import time
import tracemalloc

import pytest
from pydantic import ValidationError

from genai_service.documents.errors import DocumentTooLarge
from genai_service.documents.pipes.chunk import Chunker, approximate_token_spans, chunk_text
from genai_service.documents.pipes.parse import READ_BLOCK_BYTES, TextLimits, html_to_text, parse
from genai_service.documents.pipes.tokens import token_span_windows
from genai_service.documents.sniffing import DocumentType
from genai_service.settings import DocumentSettings
from tests.documents.samples import pdf_amplifier, pdf_with_content_streams, text_operators
from tests.fakes import TokenizingEmbeddingModel

LIMITS = TextLimits(max_chars=1_000_000, max_page_chars=50_000)


class CountingReader(io.BytesIO):
    """A file that counts the bytes read from it."""

    def __init__(self, content: bytes) -> None:
        super().__init__(content)
        self.bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        block = super().read(size)
        self.bytes_read += len(block)
        return block


def test_a_text_file_over_the_limit_fails_before_it_is_all_read() -> None:
    source = CountingReader(b"a few words " * (8 * 1024 * 1024 // 12))
    with pytest.raises(DocumentTooLarge, match="more than 1,000,000 characters"):
        parse(source, DocumentType.TEXT, LIMITS)
    assert source.bytes_read <= LIMITS.max_chars + READ_BLOCK_BYTES


def test_amplified_html_fails_while_it_is_read() -> None:
    paragraph = b"<p>" + b"visible text " * 80 + b"</p>\n"
    source = CountingReader(b"<!DOCTYPE html><html><body>" + paragraph * 10_000 + b"</body></html>")
    with pytest.raises(DocumentTooLarge, match="more than 1,000,000 characters"):
        parse(source, DocumentType.HTML, LIMITS)
    assert source.bytes_read <= 2 * LIMITS.max_chars + READ_BLOCK_BYTES


def test_markup_without_text_collects_no_text() -> None:
    markup = "<html><body>" + "<br><div></div><p></p>" * 40_000 + "<p>the end</p></body></html>"
    assert html_to_text(markup) == "the end"
    small = TextLimits(max_chars=1000, max_page_chars=1000)
    assert parse(io.BytesIO(markup.encode()), DocumentType.HTML, small).text == "the end"


def test_a_pdf_amplifier_fails_fast_at_its_first_page() -> None:
    amplifier = pdf_amplifier(text_mib=60)
    assert len(amplifier) < 200_000
    started = time.monotonic()
    with pytest.raises(DocumentTooLarge, match="Page 1 of the PDF is too large"):
        parse(io.BytesIO(amplifier), DocumentType.PDF, LIMITS)
    assert time.monotonic() - started < 5


def test_a_page_with_more_text_than_a_page_may_have_is_named() -> None:
    pdf = pdf_with_content_streams([text_operators(1000), text_operators(60_000)])
    with pytest.raises(DocumentTooLarge, match="Page 2 of the PDF holds more than 50,000"):
        parse(io.BytesIO(pdf), DocumentType.PDF, LIMITS)


def test_a_multi_page_amplifier_fails_at_the_page_that_passes_the_document_limit() -> None:
    page_text = 40_000
    pdf = pdf_with_content_streams([text_operators(page_text)] * 40)
    assert len(pdf) < 100_000
    with pytest.raises(DocumentTooLarge, match="more than 1,000,000 characters"):
        parse(io.BytesIO(pdf), DocumentType.PDF, LIMITS)
    first_page_over = math.ceil(LIMITS.max_chars / page_text) + 1
    assert first_page_over < 40  # it stopped before the last page
    within = TextLimits(max_chars=page_text * 40 + 100, max_page_chars=50_000)
    assert parse(io.BytesIO(pdf), DocumentType.PDF, within).page_count == 40


def test_pages_are_forgotten_once_their_text_is_out() -> None:
    """Each page's content stream inflates to 8 MiB (drawing operators, no text): the memory of
    reading them is one page's, not the sum of all pages'."""
    drawing = b"1 0 0 1 0 0 cm\n" * (8 * 1024 * 1024 // 15)
    pdf = pdf_with_content_streams([drawing] * 20 + [text_operators(100)])
    tracemalloc.start()
    try:
        parsed = parse(io.BytesIO(pdf), DocumentType.PDF, LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parsed.page_count == 21
    assert parsed.text.strip().startswith("lorem ipsum")
    assert peak < 48 * 1024 * 1024, f"{peak / 2**20:.0f} MiB for 20 pages of 8 MiB"


def test_a_line_without_whitespace_is_cut_into_chunks_of_bounded_length() -> None:
    text = "x" * 1_000_003
    spans = approximate_token_spans(text)
    assert spans == [(0, len(text))]  # one "token", as a word-piece tokenizer's [UNK]
    chunks = chunk_text(text, spans, max_tokens=200, max_chars=2000, overlap=40)
    assert len(chunks) == math.ceil(len(text) / 2000)
    assert all(len(chunk.text) <= 2000 for chunk in chunks)
    assert all(chunk.text == text[chunk.start : chunk.end] for chunk in chunks)
    assert [chunk.start for chunk in chunks] == [0, *(chunk.end for chunk in chunks[:-1])]
    assert chunks[-1].end == len(text)


def test_chunks_of_long_tokens_share_proportionally_less() -> None:
    """Words of 150 characters: a chunk holds 13 of them before 2000 characters; sharing 40 of
    200 tokens would embed the text 13 times over, sharing the same fifth embeds it once more."""
    text = " ".join(f"{n:03d}" + "w" * 147 for n in range(1000))
    spans = approximate_token_spans(text)
    chunks = chunk_text(text, spans, max_tokens=200, max_chars=2000, overlap=40)
    assert all(len(chunk.text) <= 2000 for chunk in chunks)
    covered = sum(len(chunk.text) for chunk in chunks)
    assert covered < 1.3 * len(text)
    assert chunks[-1].end == len(text)


def test_chunks_are_the_same_however_the_spans_arrive() -> None:
    words = ["a", "word", "tokenization", "x" * 700, ",", "."]
    text = " ".join(words[(n * n) % len(words)] for n in range(5000))
    spans = approximate_token_spans(text)
    whole = chunk_text(text, spans, max_tokens=50, max_chars=1000, overlap=10)
    chunker = Chunker(text, max_tokens=50, max_chars=1000, overlap=10)
    streamed = []
    position = 0
    for window in itertools.count():
        if position >= len(spans):
            break
        step = (window * 37) % 300 + 1  # windows of 1 to 300 spans
        streamed.extend(chunker.add(spans[position : position + step]))
        position += step
    streamed.extend(chunker.finish())
    assert streamed == whole
    assert chunker.count == len(whole)


async def test_tokenizing_goes_window_by_window_and_gives_the_whole_texts_spans() -> None:
    model = TokenizingEmbeddingModel()
    text = " ".join(f"word{n}" for n in range(60_000)) + " " + "y" * 25_000
    spans: list[tuple[int, int]] = []
    ends = []
    async for end, window_spans in token_span_windows(model, text, window_chars=10_000):
        ends.append(end)
        spans.extend(window_spans)
    assert ends[-1] == len(text)
    assert max(len(window) for window in model.tokenized) <= 10_000
    assert "".join(model.tokenized) == text
    words_part = len(text) - 25_000
    # Windows end after a space, so no word is cut; the run of 25,000 "y" must be cut anyway.
    assert spans[:60_000] == approximate_token_spans(text[:words_part])
    assert all(text[end - 1] == " " for end in ends if end < words_part)
    assert next(span for span in spans if span[0] >= words_part)[0] == words_part


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_upload_bytes": 1000, "max_queued_bytes_per_user": 999}, "max_queued_bytes"),
        ({"max_text_chars": 10_000, "max_page_chars": 20_000}, "max_page_chars"),
    ],
)
def test_settings_refuse_limits_that_contradict_each_other(
    values: dict[str, int], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        DocumentSettings(**values)
