"""Parse: a stored file to plain text, with the offset where each page starts (PDF)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from genai_service.documents.sniffing import DocumentType
from genai_service.kit.errors import AppError

PAGE_SEPARATOR = "\n\n"
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


class UnreadableDocument(AppError):
    """The file could not be turned into text; shown as the document's `error`."""

    status_code = 422
    title = "Unreadable document"
    slug = "unreadable-document"


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    text: str
    page_starts: tuple[int, ...] | None = None
    """Offset in `text` where each page begins (page 1 first), for paged formats."""

    @property
    def page_count(self) -> int | None:
        return None if self.page_starts is None else len(self.page_starts)


def parse(content: bytes, document_type: DocumentType) -> ParsedDocument:
    """The text of a file (CPU work: call it from a worker thread)."""
    if document_type is DocumentType.PDF:
        return _parse_pdf(content)
    text = _decode(content)
    if document_type is DocumentType.HTML:
        text = html_to_text(text)
    return ParsedDocument(text=_normalise_newlines(text))


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"the file is not valid UTF-8 text (byte {exc.start})") from None


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_pdf(content: bytes) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(content))
        pages = [_normalise_newlines(page.extract_text() or "").strip() for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableDocument(f"the PDF could not be read: {exc}") from None
    starts: list[int] = []
    offset = 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + len(PAGE_SEPARATOR)
    return ParsedDocument(text=PAGE_SEPARATOR.join(pages), page_starts=tuple(starts))


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(_SPACES.sub(" ", data.replace("\n", " ")))


def html_to_text(html: str) -> str:
    """The visible text of an HTML page: blocks on their own lines, scripts and styles dropped."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    lines = (line.strip() for line in "".join(collector.parts).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
