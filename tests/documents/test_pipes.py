from __future__ import annotations

import io
import itertools

import pytest

from genai_service.documents.errors import UnreadableDocument
from genai_service.documents.pipes.chunk import approximate_token_spans, chunk_text
from genai_service.documents.pipes.parse import ParsedDocument, TextLimits, html_to_text, parse
from genai_service.documents.sniffing import DocumentType
from tests.documents.samples import HTML, pdf_with_pages

GENEROUS = TextLimits(max_chars=1_000_000, max_page_chars=100_000)


def parse_bytes(content: bytes, document_type: DocumentType) -> ParsedDocument:
    return parse(io.BytesIO(content), document_type, GENEROUS)


def test_pdf_text_keeps_where_each_page_starts() -> None:
    parsed = parse_bytes(
        pdf_with_pages(["Whales sing.", "Owls hunt.", "Bats echo."]), DocumentType.PDF
    )
    assert parsed.page_count == 3
    assert parsed.page_starts is not None
    for start, expected in zip(parsed.page_starts, ["Whales", "Owls", "Bats"], strict=True):
        assert parsed.text[start:].startswith(expected)


def test_a_broken_pdf_is_unreadable_with_a_reason() -> None:
    with pytest.raises(UnreadableDocument, match="PDF"):
        parse_bytes(b"%PDF-1.4\nthis is not a pdf body", DocumentType.PDF)


def test_html_keeps_visible_text_only() -> None:
    text = html_to_text(HTML)
    assert text == "Volcanoes\n\nMagma rises through the crust & erupts as lava."
    assert "secret" not in text
    assert "color" not in text


def test_text_newlines_are_normalised_and_invalid_utf8_is_unreadable() -> None:
    assert parse_bytes(b"one\r\ntwo\rthree", DocumentType.TEXT).text == "one\ntwo\nthree"
    with pytest.raises(UnreadableDocument, match="UTF-8"):
        parse_bytes(b"ok then \xff", DocumentType.TEXT)


def test_chunks_are_exact_spans_with_overlap() -> None:
    text = " ".join(f"word{i}," for i in range(50))
    spans = approximate_token_spans(text)
    assert len(spans) == 100  # a word and a comma each
    chunks = chunk_text(text, spans, max_tokens=30, max_chars=1000, overlap=10)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.page is None
        assert len(approximate_token_spans(chunk.text)) <= 30
    # consecutive chunks share exactly `overlap` tokens; together they cover the text
    for previous, current in itertools.pairwise(chunks):
        shared = [s for s in spans if current.start <= s[0] and s[1] <= previous.end]
        assert len(shared) == 10
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)


def test_chunks_know_their_page() -> None:
    pages = [" ".join(["alpha"] * 20), " ".join(["beta"] * 20), " ".join(["gamma"] * 20)]
    parsed = parse_bytes(pdf_with_pages(pages), DocumentType.PDF)
    chunks = chunk_text(
        parsed.text,
        approximate_token_spans(parsed.text),
        max_tokens=10,
        max_chars=1000,
        overlap=2,
        page_starts=parsed.page_starts,
    )
    for chunk in chunks:
        assert chunk.text == parsed.text[chunk.start : chunk.end]
        expected = {"alpha": 1, "beta": 2, "gamma": 3}[chunk.text.split()[0]]
        assert chunk.page == expected
    assert {c.page for c in chunks} == {1, 2, 3}


def test_overlap_must_be_smaller_than_the_chunk() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_text(
            "a b c", approximate_token_spans("a b c"), max_tokens=2, max_chars=100, overlap=2
        )
    assert chunk_text("", [], max_tokens=5, max_chars=100, overlap=1) == []
