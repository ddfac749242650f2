"""Chat behaviour that needs a reply decided in advance, against the scripted model ("You said:
<question>"): a failed reply and its retry, a chat that draws on chosen documents only, the page
of a PDF's citation, and a reply that no tab of the browser follows."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.documents.samples import pdf_with_pages
from tests.web.conftest import FAILS_ONCE_MODEL, OpenPage
from tests.web.ui import (
    api_as,
    ask,
    conversation_id,
    reply_body,
    sign_up,
    stored_messages,
    upload,
    wait_until_written,
)

pytestmark = pytest.mark.browser

STORMS = "The storm table lists high water during gales at the harbour."
TIDES = "The tide table lists high water twice a day at the harbour."
DROP_FILE = """(zone, [name, text]) => {
  const files = new DataTransfer();
  files.items.add(new File([text], name, {type: "text/markdown"}));
  zone.dispatchEvent(new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
}"""


async def test_a_failed_reply_shows_its_error_and_can_be_retried(
    open_page: OpenPage, scripted_server: str
) -> None:
    page = await open_page(scripted_server)
    email = await sign_up(page)
    await page.get_by_role("combobox", name="Model").select_option(FAILS_ONCE_MODEL)
    failed = await ask(page, "tell me about the tides")
    assert await wait_until_written(failed) == "failed"
    await expect(failed.locator(".badge")).to_have_text("Failed")
    await expect(failed).to_contain_text("The model server went away.")

    await failed.get_by_role("button", name="Retry").click()

    retried = page.locator("#messages li.assistant").last
    assert await wait_until_written(retried) == "completed"
    await expect(retried).to_contain_text("You said: tell me about the tides")
    await expect(page.locator("#messages li.user")).to_have_count(2)
    async with api_as(scripted_server, email) as api:
        stored = await stored_messages(api, conversation_id(page))
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "completed"),
        ("assistant", "failed"),
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    assert stored[1]["error"].endswith("The model server went away.")


async def test_a_chat_draws_on_the_chosen_documents_only(
    open_page: OpenPage, scripted_server: str
) -> None:
    page = await open_page(scripted_server)
    email = await sign_up(page)
    await upload(page, "storms.md", STORMS.encode())
    # The other one dropped on the page, as from a file manager.
    await page.locator("#drop-zone").evaluate(DROP_FILE, ["tides.md", TIDES])
    for name in ("tides.md", "storms.md"):
        row = page.locator("li.document", has_text=name)
        await expect(row.locator(".document-status")).to_have_text("Indexed", timeout=30_000)

    await page.get_by_role("link", name="Chat").click()
    await page.locator("#document-scope summary").click()
    await page.get_by_role("radio", name="Chosen documents").check()
    await page.get_by_role("list", name="Documents to draw on").get_by_label("storms.md").check()
    await expect(page.locator("#document-scope summary")).to_contain_text("1 chosen")
    reply = await ask(page, "What does the table list about high water at the harbour?")
    assert await wait_until_written(reply) == "completed"

    sources = reply.get_by_role("list", name="Sources").get_by_role("link")
    await expect(sources).to_have_count(1)
    await expect(sources).to_have_text("[1] storms.md")
    async with api_as(scripted_server, email) as api:
        documents = (await api.get("/api/documents")).json()["items"]
        conversation = (await api.get(f"/api/conversations/{conversation_id(page)}")).json()
    storms = next(d["id"] for d in documents if d["filename"] == "storms.md")
    assert conversation["documents"] == [storms]


async def test_a_citation_of_a_pdf_names_its_page(
    open_page: OpenPage, scripted_server: str
) -> None:
    page = await open_page(scripted_server)
    await sign_up(page)
    pdf = pdf_with_pages(["The keeper's log opens here.", "Fog horn drills happen on Fridays."])
    await page.get_by_role("link", name="Documents").click()
    await page.get_by_label("Upload documents").set_input_files(
        files=[{"name": "log.pdf", "mimeType": "application/pdf", "buffer": pdf}]
    )
    row = page.locator("li.document", has_text="log.pdf")
    await expect(row.locator(".document-status")).to_have_text("Indexed", timeout=30_000)
    await expect(row).to_contain_text("2 pages")

    await page.get_by_role("link", name="Chat").click()
    await page.locator("#document-scope summary").click()
    await page.get_by_role("radio", name="All my documents").check()
    reply = await ask(page, "When do fog horn drills happen [1]?")
    assert await wait_until_written(reply) == "completed"
    # Both short pages make one chunk: it starts on page 1.
    await reply_body(reply).get_by_role("link", name="[1] log.pdf, page 1").click()
    dialog = page.get_by_role("dialog", name="[1] log.pdf, page 1")
    await expect(dialog.locator("mark")).to_contain_text("Fog horn drills happen on Fridays.")
    await expect(dialog).to_contain_text("page 1 · characters")


async def test_a_reply_started_elsewhere_appears_once_stored(
    open_page: OpenPage, scripted_server: str
) -> None:
    page = await open_page(scripted_server)
    email = await sign_up(page)
    question = " ".join(f"word{n}" for n in range(150))
    async with api_as(scripted_server, email) as api:
        conversation = (await api.post("/api/conversations", json={})).json()["id"]
        # Asked through the API (another computer, say): no tab of this browser follows it.
        turn = asyncio.create_task(
            api.post(f"/api/conversations/{conversation}/messages", json={"content": question})
        )
        deadline = asyncio.get_running_loop().time() + 10
        while not await stored_messages(api, conversation):
            assert asyncio.get_running_loop().time() < deadline, "the question was not stored"
            await asyncio.sleep(0.02)

        await page.goto(f"/ui#/chat/{conversation}")
        reply = page.locator("#messages li.assistant")
        await expect(reply).to_contain_text("started elsewhere")
        assert await wait_until_written(reply) == "completed"
        assert (await turn).status_code == 201
        stored = (await stored_messages(api, conversation))[-1]
    await expect(reply_body(reply)).to_have_text(stored["content"])
