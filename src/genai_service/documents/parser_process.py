"""Reading an uploaded file in a child process of its own: killable, with its memory capped.

Text extraction (pypdf, the HTML parser) is pure Python working on untrusted input. On a thread
of the server it would hold the GIL the event loop needs for seconds at a time, a hostile file
could take the server's memory with it, and a cancelled job could not stop it. In a child it
does none of that: the child's data segment is capped (`RLIMIT_DATA`), it is killed when its
job is cancelled or its time is up, and all its memory goes back to the system when it ends.

Children are forked from a fork server that has only the parser imported, so starting one takes
milliseconds and never forks the threads of the server. The child writes the text to its file
itself and sends back only the page offsets, so no document crosses the pipe.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import anyio

from genai_service.documents.errors import DocumentTooLarge, UnreadableDocument
from genai_service.documents.pipes.parse import TextLimits, parse
from genai_service.documents.sniffing import DocumentType
from genai_service.kit.errors import AppError

_PRELOADED = ["genai_service.documents.pipes.parse", "pypdf"]


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


def _context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOADED)  # read once, when the fork server starts
    return context


async def extract_text(
    original: Path, text_file: Path, document_type: DocumentType, limits: ParserLimits
) -> ExtractedText:
    """Extract the text of `original` into `text_file` (UTF-8) in a child process.

    Raises `UnreadableDocument` (or `DocumentTooLarge`) when the file cannot be read within the
    limits. Cancelling the caller kills the child at once.
    """
    context = _context()
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(
        target=_child,
        args=(sending, str(original), str(text_file), document_type.value, limits),
        name="genai-document-parser",
        daemon=True,
    )
    try:
        await anyio.to_thread.run_sync(process.start)
        sending.close()
        try:
            with anyio.fail_after(limits.timeout_s):
                await anyio.wait_readable(receiving)  # the child's answer, or its end
            outcome: ExtractedText | AppError = receiving.recv()
        except TimeoutError:
            raise DocumentTooLarge(
                f"Reading the file took longer than {limits.timeout_s:g} s, the most allowed."
            ) from None
        except EOFError:  # killed by the system, or crashed inside a C extension
            await anyio.to_thread.run_sync(process.join)
            raise UnreadableDocument(
                f"Reading the file stopped its parser (exit code {process.exitcode})."
            ) from None
    finally:
        with anyio.CancelScope(shield=True):
            if process.is_alive():
                process.kill()
            if process.pid is not None:
                await anyio.to_thread.run_sync(process.join)
            process.close()
            receiving.close()
            sending.close()
    if isinstance(outcome, AppError):
        raise outcome
    return outcome


def _child(
    sending: Connection, original: str, text_file: str, document_type: str, limits: ParserLimits
) -> None:
    """Runs in the child: parse, write the text, answer with its page offsets or the error."""
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = limits.memory_bytes if hard == resource.RLIM_INFINITY else min(limits.memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    # The child has no log sink of its own, and a malformed PDF makes pypdf warn thousands of
    # times: nothing of it may reach the server's log stream as stray lines.
    warnings.simplefilter("ignore")
    pypdf_logger = logging.getLogger("pypdf")
    pypdf_logger.addHandler(logging.NullHandler())
    pypdf_logger.propagate = False
    outcome: ExtractedText | AppError
    try:
        with open(original, "rb") as source:
            parsed = parse(source, DocumentType(document_type), limits.text)
        # A lone surrogate (from a broken PDF font map) becomes "?": one character for one, so
        # the offsets of everything after it stay true.
        Path(text_file).write_bytes(parsed.text.encode("utf-8", errors="replace"))
        outcome = ExtractedText(chars=len(parsed.text), page_starts=parsed.page_starts)
    except AppError as error:
        outcome = error
    except MemoryError:
        outcome = DocumentTooLarge(
            f"Reading the file needs more than {limits.memory_bytes // 2**20} MiB of memory, "
            "the most allowed."
        )
    except Exception as error:  # a parser bug on odd input: the job fails, the server goes on
        outcome = UnreadableDocument(f"The file could not be read ({type(error).__name__}).")
    sending.send(outcome)
    sending.close()
