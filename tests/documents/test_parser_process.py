"""Text extraction in its own process: its memory capped, its time bounded, killed on cancel."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from genai_service.documents.errors import DocumentTooLarge, UnreadableDocument
from genai_service.documents.parser_process import ParserLimits, extract_text
from genai_service.documents.pipes.parse import TextLimits
from genai_service.documents.sniffing import DocumentType
from tests.documents.samples import pdf_with_content_streams, pdf_with_pages, text_operators
from tests.polling import wait_until
from tests.process_tree import children, command_line

MIB = 1024 * 1024
GENEROUS = ParserLimits(
    text=TextLimits(max_chars=100_000_000, max_page_chars=100_000_000),
    memory_bytes=512 * MIB,
    timeout_s=60,
)


def parsers() -> set[int]:
    return {pid for pid in children(os.getpid()) if "parser_child" in command_line(pid)}


async def test_the_text_is_written_to_its_file_and_the_pages_are_reported(tmp_path: Path) -> None:
    original = tmp_path / "doc.upload"
    original.write_bytes(pdf_with_pages(["Whales sing.", "Owls hunt."]))
    text_file = tmp_path / "doc.txt"
    extracted = await extract_text(original, text_file, DocumentType.PDF, GENEROUS)
    text = text_file.read_bytes().decode()
    assert extracted.chars == len(text)
    assert extracted.page_starts is not None
    assert [text[start:].split(".")[0] for start in extracted.page_starts] == [
        "Whales sing",
        "Owls hunt",
    ]


async def test_a_file_that_needs_more_memory_than_allowed_fails(tmp_path: Path) -> None:
    original = tmp_path / "big.upload"
    original.write_bytes(b"a few words " * (48 * MIB // 12))
    limits = ParserLimits(text=GENEROUS.text, memory_bytes=64 * MIB, timeout_s=60)
    with pytest.raises(DocumentTooLarge, match="more than 64 MiB of memory"):
        await extract_text(original, tmp_path / "big.txt", DocumentType.TEXT, limits)
    # The same file with room to spare is read.
    extracted = await extract_text(original, tmp_path / "big.txt", DocumentType.TEXT, GENEROUS)
    assert extracted.chars == original.stat().st_size


async def test_a_file_that_takes_too_long_is_given_up_and_its_parser_killed(
    tmp_path: Path,
) -> None:
    original = tmp_path / "slow.upload"
    original.write_bytes(pdf_with_content_streams([text_operators(90_000)] * 400))
    limits = ParserLimits(text=GENEROUS.text, memory_bytes=512 * MIB, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(DocumentTooLarge, match=r"longer than 0.5 s"):
        await extract_text(original, tmp_path / "slow.txt", DocumentType.PDF, limits)
    assert time.monotonic() - started < 5
    assert parsers() == set()


async def test_cancelling_kills_the_parser_at_once(tmp_path: Path) -> None:
    original = tmp_path / "slow.upload"
    original.write_bytes(pdf_with_content_streams([text_operators(90_000)] * 400))
    extraction = asyncio.create_task(
        extract_text(original, tmp_path / "slow.txt", DocumentType.PDF, GENEROUS)
    )
    await wait_until(lambda: bool(parsers()), within=10)
    await asyncio.sleep(0.3)  # it is reading pages now
    cancelled = time.monotonic()
    extraction.cancel()
    with pytest.raises(asyncio.CancelledError):
        await extraction
    assert time.monotonic() - cancelled < 1
    assert parsers() == set()


async def test_a_file_the_parser_cannot_read_fails_with_the_reason(tmp_path: Path) -> None:
    original = tmp_path / "broken.upload"
    original.write_bytes(b"valid start \xff\xfe then not UTF-8")
    with pytest.raises(UnreadableDocument, match="not valid UTF-8 text"):
        await extract_text(original, tmp_path / "broken.txt", DocumentType.TEXT, GENEROUS)
