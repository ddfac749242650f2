"""Parse: a stored file to plain text, with the offset where each page starts (PDF).

Text is counted as it comes out, against `TextLimits`: a text file while it is decoded, HTML
while its visible text is collected, a PDF page by page. A file with more text than allowed
fails at the first character past the limit, never after all of it sits in memory. (Pure Python
CPU work: it runs in the parser's child process, `documents/parser_process.py`.)
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, BinaryIO

from genai_service.documents.errors import DocumentTooLarge, UnreadableDocument
from genai_service.documents.sniffing import DocumentType

if TYPE_CHECKING:
    from pypdf import PdfReader

PAGE_SEPARATOR = "\n\n"
READ_BLOCK_BYTES = 1024 * 1024
PDF_STREAM_MAX_BYTES = 16 * 1024 * 1024
"""Most bytes one PDF stream may decompress to (pypdf's default is 75 MB). A page's text comes
from its content streams, so this bounds the work and memory of a single page: a few kilobytes
of Flate data can inflate to gigabytes. Real content streams are far smaller (vector-heavy pages
reach a few MiB); images are not decompressed to extract text."""

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)
_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript", "head"})
_BLANK_LINES = re.compile(r"\n[ \t]*(\n[ \t]*)+")
_SPACES = re.compile(r"[ \t\f\v]+")


@dataclass(frozen=True, slots=True)
class TextLimits:
    max_chars: int
    """Characters of text from the whole document."""
    max_page_chars: int
    """Characters of text from one page (paged formats)."""


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    text: str
    page_starts: tuple[int, ...] | None = None
    """Offset in `text` where each page begins (page 1 first), for paged formats."""

    @property
    def page_count(self) -> int | None:
        return None if self.page_starts is None else len(self.page_starts)


class _TextBudget:
    """The characters a document may still produce; taking more raises `DocumentTooLarge`."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.used = 0

    def take(self, count: int) -> None:
        self.used += count
        if self.used > self.max_chars:
            raise DocumentTooLarge(
                f"The document holds more than {self.max_chars:,} characters of text, "
                "the most one document may have."
            )

    def counted(self, text: str) -> str:
        self.take(len(text))
        return text


def parse(source: BinaryIO, document_type: DocumentType, limits: TextLimits) -> ParsedDocument:
    """The text of the file `source` reads, within `limits`."""
    if document_type is DocumentType.PDF:
        return _parse_pdf(source, limits)
    budget = _TextBudget(limits.max_chars)
    if document_type is DocumentType.HTML:
        # Only the visible text counts: the markup itself is bounded by the upload size.
        text = _html_text(_decoded(source), budget)
    else:
        text = "".join(budget.counted(piece) for piece in _decoded(source))
    return ParsedDocument(text=_normalise_newlines(text))


def _decoded(source: BinaryIO) -> Iterator[str]:
    """The file decoded as UTF-8, one block at a time."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    position = 0
    final = False
    while not final:
        block = source.read(READ_BLOCK_BYTES)
        final = not block
        pending = len(decoder.getstate()[0])
        try:
            piece = decoder.decode(block, final=final)
        except UnicodeDecodeError as exc:
            byte = position - pending + exc.start
            raise UnreadableDocument(f"the file is not valid UTF-8 text (byte {byte})") from None
        position += len(block)
        yield piece


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_pdf(source: BinaryIO, limits: TextLimits) -> ParsedDocument:
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PyPdfError

    budget = _TextBudget(limits.max_chars)
    pages: list[str] = []
    starts: list[int] = []
    offset = 0
    with apply_configuration(
        zlib_maximum_output_length=PDF_STREAM_MAX_BYTES,
        lzw_maximum_output_length=PDF_STREAM_MAX_BYTES,
        run_length_maximum_output_length=PDF_STREAM_MAX_BYTES,
        brotli_maximum_output_length=PDF_STREAM_MAX_BYTES,
    ):
        try:
            reader = PdfReader(source)
            for number, page in enumerate(reader.pages, start=1):
                try:
                    text = _normalise_newlines(page.extract_text() or "").strip()
                except LimitReachedError as exc:
                    raise DocumentTooLarge(
                        f"Page {number} of the PDF is too large to read ({exc})"
                    ) from None
                if len(text) > limits.max_page_chars:
                    raise DocumentTooLarge(
                        f"Page {number} of the PDF holds more than {limits.max_page_chars:,} "
                        "characters of text, the most one page may have."
                    )
                budget.take(len(text) + (len(PAGE_SEPARATOR) if pages else 0))
                starts.append(offset)
                pages.append(text)
                offset += len(text) + len(PAGE_SEPARATOR)
                _forget_resolved_objects(reader)
        except LimitReachedError as exc:
            raise DocumentTooLarge(f"The PDF is too large to read ({exc})") from None
        except (PyPdfError, ValueError, KeyError, TypeError) as exc:
            raise UnreadableDocument(f"the PDF could not be read: {exc}") from None
    return ParsedDocument(text=PAGE_SEPARATOR.join(pages), page_starts=tuple(starts))


def _forget_resolved_objects(reader: PdfReader) -> None:
    """Drop what pypdf cached while reading a page: each content stream keeps its decompressed
    bytes, so without this every page of a long PDF would stay in memory until the end."""
    reader.resolved_objects.clear()


class _TextCollector(HTMLParser):
    """The visible text of a page, counted against `budget` as it is collected.

    Block tags become line breaks, but never more than a blank line in a row, so a page of
    nothing but tags collects nothing.
    """

    def __init__(self, budget: _TextBudget) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._budget = budget
        self._skipping = 0
        self._trailing_newlines = 2

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._add(_SPACES.sub(" ", data.replace("\n", " ")))
            self._trailing_newlines = 0

    def _newline(self) -> None:
        if self._trailing_newlines < 2:
            self._add("\n")
            self._trailing_newlines += 1

    def _add(self, text: str) -> None:
        self._budget.take(len(text))
        self.parts.append(text)


def _html_text(markup: Iterable[str], budget: _TextBudget) -> str:
    collector = _TextCollector(budget)
    for piece in markup:
        collector.feed(piece)
    collector.close()
    lines = (line.strip() for line in "".join(collector.parts).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """The visible text of an HTML page: blocks on their own lines, scripts and styles dropped."""
    return _html_text([html], _TextBudget(len(html) + 1))
