"""What an upload is, judged from its first bytes rather than its name."""

from __future__ import annotations

import codecs
import re
from enum import StrEnum

SNIFF_BYTES = 8192
"""How much of the start of a file the type is judged on."""

_HTML_START = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.I | re.S
)
_MARKDOWN_LINE = re.compile(
    r"^(#{1,6}\s|```|~~~|>\s|[-*+]\s|\d+\.\s|\|.*\|\s*$)|\[[^\]]+\]\([^)]+\)", re.M
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class DocumentType(StrEnum):
    PDF = "application/pdf"
    HTML = "text/html"
    MARKDOWN = "text/markdown"
    TEXT = "text/plain"


def sniff(head: bytes, *, whole_file: bool = True) -> DocumentType | None:
    """The type of a file starting with `head` (its first `SNIFF_BYTES`; `whole_file` when that
    is all of it), or `None` when it is none of the accepted types (binary data, executables,
    archives, other encodings)."""
    if head.startswith(b"%PDF-"):
        return DocumentType.PDF
    text = _utf8_prefix(head, final=whole_file)
    if text is None or _CONTROL.search(text):
        return None
    if _HTML_START.match(head):
        return DocumentType.HTML
    if _MARKDOWN_LINE.search(text):
        return DocumentType.MARKDOWN
    return DocumentType.TEXT


def _utf8_prefix(head: bytes, *, final: bool) -> str | None:
    """`head` decoded as UTF-8 (unless `final`, a character cut off at the end is fine);
    `None` if it is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        return decoder.decode(head, final=final)
    except UnicodeDecodeError:
        return None
