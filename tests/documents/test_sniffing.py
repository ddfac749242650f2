from __future__ import annotations

import pytest

from genai_service.documents.sniffing import DocumentType, sniff
from tests.documents.samples import ELF_EXECUTABLE, HTML, MARKDOWN, TEXT, pdf_with_pages


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (pdf_with_pages(["a page"]), DocumentType.PDF),
        (HTML.encode(), DocumentType.HTML),
        (b"  <!-- generated -->\n<html lang='en'><body>x</body></html>", DocumentType.HTML),
        (MARKDOWN.encode(), DocumentType.MARKDOWN),
        (b"See [the docs](https://example.com) for more.", DocumentType.MARKDOWN),
        (TEXT.encode(), DocumentType.TEXT),
        ("Grüße aus Köln — ünïcödé".encode(), DocumentType.TEXT),
        (b"\xef\xbb\xbfwith a byte order mark", DocumentType.TEXT),
    ],
)
def test_accepted_types_are_told_apart_by_content(head: bytes, expected: DocumentType) -> None:
    assert sniff(head) is expected


@pytest.mark.parametrize(
    "head",
    [
        ELF_EXECUTABLE,
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00",  # a Windows executable
        b"PK\x03\x04\x14\x00\x00\x00",  # a zip archive
        "latin-1 text: caf\xe9".encode("latin-1"),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
)
def test_anything_else_is_refused(head: bytes) -> None:
    assert sniff(head) is None


def test_a_character_cut_at_the_end_of_the_sniffed_bytes_is_still_text() -> None:
    head = ("a" * 10 + "é").encode()[:-1]
    assert sniff(head, whole_file=False) is DocumentType.TEXT
    assert sniff(head, whole_file=True) is None
