"""Where uploaded files and their extracted text live: the data dir, under generated names."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
from loguru import logger

from genai_service.documents.sniffing import SNIFF_BYTES

COPY_CHUNK_BYTES = 1024 * 1024
INCOMING_PREFIX = "incoming-"
STALE_UPLOAD_SECONDS = 3600.0
"""An `incoming-*` file not written to for this long is a leftover of a crash, not an upload in
progress: a live upload writes a block at least every few seconds, and a client stalled for an
hour has long been cut off by any proxy."""

Reader = Callable[[int], Awaitable[bytes]]
"""Reads up to n bytes; empty at the end (`UploadFile.read`, an async file's `read`)."""


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """A file written to a temporary place, with what was learnt while writing it."""

    path: Path
    size: int
    sha256: str
    head: bytes
    too_large: bool


class DocumentStorage:
    """Files named after the document id (never the client's filename): `<id>.upload` for the
    original and `<id>.txt` for the text extracted from it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def original(self, document_id: uuid.UUID) -> Path:
        return self.root / f"{document_id}.upload"

    def extracted_text(self, document_id: uuid.UUID) -> Path:
        return self.root / f"{document_id}.txt"

    async def receive(self, read: Reader, *, max_bytes: int) -> StoredUpload:
        """Stream `read` to a temporary file one block at a time, hashing as it goes.

        Stops at the first byte past `max_bytes` (`too_large`); the file is then removed.
        """
        await anyio.Path(self.root).mkdir(parents=True, exist_ok=True)
        path = self.root / f"{INCOMING_PREFIX}{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        head = b""
        async with await anyio.open_file(path, "wb") as target:
            while block := await read(COPY_CHUNK_BYTES):
                size += len(block)
                if size > max_bytes:
                    break
                if len(head) < SNIFF_BYTES:
                    head += block[: SNIFF_BYTES - len(head)]
                digest.update(block)
                await target.write(block)
        too_large = size > max_bytes
        if too_large:
            await self.discard(path)
        return StoredUpload(path, size, digest.hexdigest(), head, too_large)

    async def keep(self, upload: StoredUpload, document_id: uuid.UUID) -> None:
        await anyio.Path(upload.path).rename(self.original(document_id))

    async def write_text(self, document_id: uuid.UUID, text: str) -> None:
        # Bytes, not text mode: newline translation would move the offsets chunks point at.
        await anyio.Path(self.extracted_text(document_id)).write_bytes(text.encode("utf-8"))

    async def read_text(self, document_id: uuid.UUID) -> str | None:
        path = anyio.Path(self.extracted_text(document_id))
        if not await path.exists():
            return None
        return (await path.read_bytes()).decode("utf-8")

    async def remove(self, document_id: uuid.UUID) -> None:
        for path in (self.original(document_id), self.extracted_text(document_id)):
            await self.discard(path)

    async def remove_stale_uploads(self, *, older_than_s: float = STALE_UPLOAD_SECONDS) -> int:
        """Remove upload files left behind by a process that died while receiving them; how many.

        Another process (a second server worker) may be receiving an upload into the same folder
        right now, so only files not written to for `older_than_s` go.
        """
        removed = await anyio.to_thread.run_sync(self._remove_stale_uploads, older_than_s)
        if removed:
            logger.info("removed {} upload file(s) left by an interrupted upload", removed)
        return removed

    def _remove_stale_uploads(self, older_than_s: float) -> int:
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.glob(f"{INCOMING_PREFIX}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # kept or discarded meanwhile by its upload
                continue
        return removed

    @staticmethod
    async def discard(path: Path) -> None:
        await anyio.Path(path).unlink(missing_ok=True)
