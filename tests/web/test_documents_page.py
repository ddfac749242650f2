"""Documents in the browser, with the real models: upload, ingestion followed to "indexed", a chat
that draws on the documents, and a citation opened on its exact quote in the document's text."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Route, expect

from tests.live_server import LiveServer
from tests.web.conftest import OpenPage
from tests.web.ui import (
    HANDBOOK,
    api_as,
    ask,
    conversation_id,
    set_max_tokens,
    sign_up,
    stored_messages,
    upload,
    use_all_documents,
    wait_until_written,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]


# Resolves with the status texts a document's row shows, in order, until it shows "Failed" again
# (called with the row; it gives up after 60 s).
STATUSES_UNTIL_FAILED = """row => new Promise(resolve => {
  const status = row.querySelector(".document-status");
  const seen = [];
  const finish = () => { observer.disconnect(); resolve(seen); };
  const observer = new MutationObserver(() => {
    if (seen.at(-1) !== status.textContent) seen.push(status.textContent);
    if (seen.length >= 2 && status.textContent === "Failed") finish();
  });
  observer.observe(status, {subtree: true, childList: true, characterData: true});
  setTimeout(finish, 60000);
})"""


async def test_an_uploaded_document_is_indexed_asked_about_and_cited(
    open_page: OpenPage, model_server: LiveServer
) -> None:
    page = await open_page(model_server.base_url)
    email = await sign_up(page)
    await upload(page, "handbook.md", HANDBOOK.encode())

    row = page.locator("li.document", has_text="handbook.md")
    await expect(row.locator(".document-status")).to_have_text("Indexed", timeout=60_000)
    assert await row.get_by_role("progressbar").evaluate("bar => bar.value") == 1
    await expect(row).to_contain_text(re.compile(r"\d+ chunks?"))
    await expect(row.get_by_role("button", name="Cancel handbook.md")).to_be_hidden()

    await page.get_by_role("button", name="New chat").click()
    await use_all_documents(page)
    await set_max_tokens(page, 32)
    reply = await ask(page, "When do supplies arrive at the lighthouse?")
    assert await wait_until_written(reply) == "completed"
    async with api_as(model_server.base_url, email) as api:
        stored = (await stored_messages(api, conversation_id(page)))[-1]
        conversation = (await api.get(f"/api/conversations/{conversation_id(page)}")).json()
    assert conversation["documents"] == "all"
    citation = stored["citations"][0]
    assert citation["filename"] == "handbook.md"

    source = reply.get_by_role("list", name="Sources").get_by_role("link", name="[1] handbook.md")
    await source.click()
    dialog = page.get_by_role("dialog", name="[1] handbook.md")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("mark")).to_have_text(citation["quote"])
    await expect(dialog).to_contain_text(f"characters {citation['start']}-{citation['end']}")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(source).to_be_focused()


async def test_ingestion_can_be_cancelled_retried_and_the_document_deleted(
    open_page: OpenPage, model_server: LiveServer
) -> None:
    page = await open_page(model_server.base_url)
    email = await sign_up(page)
    # Not a PDF the parser can read: its ingestion fails, and a retry is offered. The long text
    # takes the embedding model a while: long enough to cancel it.
    long_text = "\n\n".join(f"Paragraph {n}: the tide log of day {n}." * 8 for n in range(3000))
    await page.get_by_role("link", name="Documents").click()
    await page.get_by_label("Upload documents").set_input_files(
        files=[
            {"name": "long.txt", "mimeType": "text/plain", "buffer": long_text.encode()},
            {"name": "broken.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 broken"},
        ]
    )
    long = page.locator("li.document", has_text="long.txt")
    broken = page.locator("li.document", has_text="broken.pdf")
    await long.get_by_role("button", name="Cancel long.txt").click()
    await expect(long.locator(".document-status")).to_have_text("Cancelled", timeout=60_000)
    await expect(broken.locator(".document-status")).to_have_text("Failed", timeout=60_000)
    await expect(broken.locator(".document-note")).not_to_be_empty()

    statuses = asyncio.create_task(broken.evaluate(STATUSES_UNTIL_FAILED))
    await broken.get_by_role("button", name="Retry broken.pdf").click()
    seen = await statuses
    assert seen[0] != "Failed", seen
    assert seen[-1] == "Failed", seen
    async with api_as(model_server.base_url, email) as api:
        documents = {d["filename"]: d for d in (await api.get("/api/documents")).json()["items"]}
        assert documents["broken.pdf"]["status"] == "failed"
        assert documents["long.txt"]["status"] == "cancelled"

        await long.get_by_role("button", name="Delete long.txt").click()
        confirm = page.get_by_role("dialog", name="Delete document?")
        await confirm.get_by_role("button", name="Delete").click()
        await expect(long).to_have_count(0)
        remaining = [d["filename"] for d in (await api.get("/api/documents")).json()["items"]]
    assert remaining == ["broken.pdf"]


async def test_a_list_answered_after_an_upload_keeps_the_uploaded_row(
    open_page: OpenPage, scripted_server: str
) -> None:
    """The list asked for when the page opens answers (with no documents) only after an upload
    added its row: the row is newer than the answer and stays."""
    page = await open_page(scripted_server)
    await sign_up(page)
    answered = asyncio.Event()
    release = asyncio.Event()

    async def hold_the_list(route: Route) -> None:
        response = await route.fetch()  # the list as it is now: empty
        answered.set()
        await release.wait()
        await route.fulfill(response=response)

    await page.route(re.compile(r"/api/documents\?limit=100$"), hold_the_list)
    await upload(page, "tides.md", b"# Tides\n\nThe tide turns twice a day.")
    row = page.locator("li.document", has_text="tides.md")
    await expect(row.locator(".document-status")).to_have_text("Indexed", timeout=30_000)
    await asyncio.wait_for(answered.wait(), timeout=10)
    async with page.expect_response(re.compile(r"/api/documents\?limit=100$")):
        release.set()
    # The page reads and applies the answer in its own tasks; give them time to run.
    await page.evaluate("() => new Promise(resolve => setTimeout(resolve, 300))")
    await expect(row).to_have_count(1)
    await expect(row.locator(".document-status")).to_have_text("Indexed")
    await expect(page.locator("#document-empty")).to_be_hidden()
