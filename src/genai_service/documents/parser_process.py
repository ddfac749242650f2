"""Reading an uploaded file in a child process of its own: killable, with its memory capped.

Text extraction (pypdf, the HTML parser) is pure Python working on untrusted input. On a thread
of the server it would hold the GIL the event loop needs for seconds at a time, a hostile file
could take the server's memory with it, and a cancelled job could not stop it. In a child it
does none of that: the child caps its own data segment (`RLIMIT_DATA`), it is killed when its
job is cancelled or its time is up, and all its memory goes back to the system when it ends.

The child is a fresh interpreter running `documents/parser_child.py` (a fifth of a second to
start; nothing of the server is inherited or imported again). It gets its job on stdin as JSON,
writes the text to its file itself and answers on stdout with the page offsets only, so no
document crosses the pipe.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from genai_service.documents.errors import DocumentTooLarge, UnreadableDocument
from genai_service.documents.parser_child import ParseJob
from genai_service.documents.pipes.parse import TextLimits
from genai_service.documents.sniffing import DocumentType

CHILD_MODULE = "genai_service.documents.parser_child"
"""Run as `python -m`, so the child imports nothing but the parser."""
STDERR_LOGGED_CHARS = 2000


@dataclass(frozen=True, slots=True)
class ParserLimits:
    text: TextLimits
    memory_bytes: int
    """The child's data segment (heap and private mappings)."""
    timeout_s: float


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """What the child reports: the text itself is in the file it was asked to write."""

    chars: int
    page_starts: tuple[int, ...] | None

    @property
    def page_count(self) -> int | None:
        return None if self.page_starts is None else len(self.page_starts)


async def extract_text(
    original: Path, text_file: Path, document_type: DocumentType, limits: ParserLimits
) -> ExtractedText:
    """Extract the text of `original` into `text_file` (UTF-8) in a child process.

    Raises `UnreadableDocument` (or `DocumentTooLarge`) when the file cannot be read within the
    limits. Cancelling the caller kills the child at once.
    """
    job: ParseJob = {
        "original": str(original),
        "text_file": str(text_file),
        "document_type": document_type.value,
        "max_chars": limits.text.max_chars,
        "max_page_chars": limits.text.max_page_chars,
        "memory_bytes": limits.memory_bytes,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        CHILD_MODULE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(limits.timeout_s):
            answer, errors = await child.communicate(json.dumps(job).encode())
    except TimeoutError:
        raise DocumentTooLarge(
            f"Reading the file took longer than {limits.timeout_s:g} s, the most allowed."
        ) from None
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    if errors:  # only a crash writes there: the child reports failures in its answer
        logger.warning("the document parser wrote: {}", errors[-STDERR_LOGGED_CHARS:].decode())
    if child.returncode != 0 or not answer:
        raise UnreadableDocument(
            f"Reading the file stopped its parser (exit code {child.returncode})."
        )
    return _outcome(json.loads(answer))


def _outcome(answer: object) -> ExtractedText:
    if not isinstance(answer, dict):
        raise UnreadableDocument("The file's parser gave no answer.")
    failure = answer.get("failure")
    if failure is not None:
        error = DocumentTooLarge if failure == "too-large" else UnreadableDocument
        raise error(str(answer.get("detail")))
    chars, page_starts = answer.get("chars"), answer.get("page_starts")
    if not isinstance(chars, int) or not (page_starts is None or isinstance(page_starts, list)):
        raise UnreadableDocument("The file's parser gave an answer that could not be read.")
    return ExtractedText(chars, None if page_starts is None else tuple(page_starts))
