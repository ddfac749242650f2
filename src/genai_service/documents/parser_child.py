"""The document parser's child process (`python -m genai_service.documents.parser_child`).

It reads its job from stdin as JSON, caps its own memory, extracts the text of one file into
the text file it was given and answers on stdout with one JSON object: the text's length and
page offsets, or a `failure` (`too-large`, `unreadable`) with a `detail` for the document's
`error`. It imports only the parser, so it starts quickly. See `parser_process`.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import warnings
from pathlib import Path
from typing import TypedDict

from genai_service.documents.errors import DocumentTooLarge, UnreadableDocument
from genai_service.documents.pipes.parse import TextLimits, parse
from genai_service.documents.sniffing import DocumentType


class ParseJob(TypedDict):
    original: str
    text_file: str
    document_type: str
    max_chars: int
    max_page_chars: int
    memory_bytes: int


def _cap_memory(limit: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _silence() -> None:
    """No log lines or warnings of the parser on stderr: a malformed PDF makes pypdf warn
    thousands of times, and the server's log stream is for the server."""
    warnings.simplefilter("ignore")
    pypdf = logging.getLogger("pypdf")
    pypdf.addHandler(logging.NullHandler())
    pypdf.propagate = False


def run(job: ParseJob) -> dict[str, object]:
    memory_bytes = job["memory_bytes"]
    _cap_memory(memory_bytes)
    _silence()
    try:
        limits = TextLimits(max_chars=job["max_chars"], max_page_chars=job["max_page_chars"])
        with open(job["original"], "rb") as source:
            parsed = parse(source, DocumentType(job["document_type"]), limits)
        # A lone surrogate (from a broken PDF font map) becomes "?": one character for one, so
        # the offsets of everything after it stay true.
        Path(job["text_file"]).write_bytes(parsed.text.encode("utf-8", errors="replace"))
    except DocumentTooLarge as error:
        return {"failure": "too-large", "detail": error.detail}
    except UnreadableDocument as error:
        return {"failure": "unreadable", "detail": error.detail}
    except MemoryError:
        return {
            "failure": "too-large",
            "detail": f"Reading the file needs more than {memory_bytes // 2**20} MiB of memory, "
            "the most allowed.",
        }
    except Exception as error:  # a parser bug on odd input: the document fails, nothing more
        return {
            "failure": "unreadable",
            "detail": f"The file could not be read ({type(error).__name__}).",
        }
    starts = None if parsed.page_starts is None else list(parsed.page_starts)
    return {"chars": len(parsed.text), "page_starts": starts}


def main() -> None:
    job: ParseJob = json.loads(sys.stdin.buffer.read())
    answer = run(job)
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
