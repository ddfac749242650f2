"""Small documents made by the tests: text, Markdown, HTML and a hand-written PDF with pages."""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any

import httpx

from tests.identity import Account


def pdf_with_pages(pages: list[str]) -> bytes:
    """A valid PDF with one line of Helvetica text per page (written by hand, xref included)."""
    contents = []
    for text in pages:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        contents.append(f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode())
    return pdf_with_content_streams(contents, compress=False)


def pdf_with_content_streams(contents: list[bytes], *, compress: bool = True) -> bytes:
    """A valid PDF whose pages have these content streams (Flate-compressed unless told not
    to), with Helvetica as font `/F1`."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(contents))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(contents)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for index, content in enumerate(contents):
        content_id = page_ids[index] + 1
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>".encode()
        )
        stream = zlib.compress(content, 9) if compress else content
        flate = b" /Filter /FlateDecode" if compress else b""
        objects.append(
            b"<< /Length "
            + str(len(stream)).encode()
            + flate
            + b" >>\nstream\n"
            + stream
            + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def text_operators(text_bytes: int, word: bytes = b"lorem ipsum dolor sit amet ") -> bytes:
    """A content stream showing `text_bytes` of text in one string: it compresses about a
    thousandfold, so a few kilobytes of PDF carry megabytes of text."""
    return b"BT /F1 12 Tf 72 720 Td (" + word * (text_bytes // len(word)) + b") Tj ET"


def pdf_amplifier(text_mib: int = 60) -> bytes:
    """One page whose single text string inflates to `text_mib` MiB (the file is ~150 KB)."""
    return pdf_with_content_streams([text_operators(text_mib * 1024 * 1024)])


ELF_EXECUTABLE = b"\x7fELF\x02\x01\x01\x00" + bytes(56) + b"\x00\x00code"

TEXT = (
    "Lighthouses guide ships along dangerous coasts at night.\n\n"
    "The keeper trims the wick and winds the clockwork every evening.\n"
)
MARKDOWN = (
    "# Bees\n\n- Honey bees dance to tell the hive where flowers are.\n- Drones do not sting.\n"
)
HTML = (
    "<!DOCTYPE html><html><head><title>t</title><style>p{color:red}</style>"
    "<script>var secret = 1;</script></head><body><h1>Volcanoes</h1>"
    "<p>Magma rises through the crust &amp; erupts as lava.</p></body></html>"
)


async def upload(
    client: httpx.AsyncClient,
    account: Account | None,
    content: bytes,
    filename: str = "notes.txt",
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    headers = account.headers if account else {}
    return await client.post(
        "/api/documents", files={"file": (filename, content, content_type)}, headers=headers
    )


FINAL = {"indexed", "failed", "cancelled"}


async def wait_for_final(
    client: httpx.AsyncClient, account: Account | None, document_id: str, within: float = 30
) -> dict[str, Any]:
    headers = account.headers if account else {}
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/api/documents/{document_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in FINAL:
            return body
        assert time.monotonic() < deadline, f"document still {body['status']} after {within}s"
        await asyncio.sleep(0.05)
