"""The main screens at 360 px (a phone) and 1280 px (a desktop), with the real models: nothing
wider than the window, the conversation list as a drawer on the phone. The screenshots in the docs
come from this test (`make screenshots` saves them to docs/screenshots)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.live_server import LiveServer
from tests.web.conftest import DESKTOP, PHONE, OpenPage
from tests.web.ui import (
    HANDBOOK,
    ask,
    set_max_tokens,
    sign_up,
    upload,
    use_all_documents,
    wait_until_written,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

WIDER_THAN_THE_WINDOW = """() => [document.documentElement, document.getElementById("main")]
  .filter(element => element.scrollWidth > element.clientWidth)
  .map(element => `${element.localName}: ${element.scrollWidth} > ${element.clientWidth}`)"""


async def capture(page: Page, folder: Path, screen: str) -> None:
    """The screen at both widths: it must fit each, and is saved as <screen>-<width>.png."""
    for viewport in (DESKTOP, PHONE):
        await page.set_viewport_size(viewport)
        assert await page.evaluate(WIDER_THAN_THE_WINDOW) == [], f"{screen} at {viewport}"
        await page.screenshot(path=folder / f"{screen}-{viewport['width']}.png")
    await page.set_viewport_size(DESKTOP)


async def test_the_main_screens_fit_a_phone_and_a_desktop(
    open_page: OpenPage, model_server: LiveServer, screenshots: Path
) -> None:
    page = await open_page(model_server.base_url)
    await page.goto("/ui")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await capture(page, screenshots, "sign-in")

    await sign_up(page)
    await upload(page, "handbook.md", HANDBOOK.encode())
    row = page.locator("li.document", has_text="handbook.md")
    await expect(row.locator(".document-status")).to_have_text("Indexed", timeout=60_000)
    await capture(page, screenshots, "documents")

    await page.get_by_role("button", name="New chat").click()
    await use_all_documents(page)
    await set_max_tokens(page, 48)
    reply = await ask(page, "When do supplies arrive at the lighthouse?")
    assert await wait_until_written(reply) == "completed"
    await page.locator("details.reply-options summary").click()
    await page.locator("#document-scope summary").click()
    await page.get_by_role("button", name="Rename").click()
    await (
        page.get_by_role("dialog", name="Rename conversation")
        .get_by_label("Title")
        .fill("Lighthouse supplies")
    )
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Lighthouse supplies")
    await capture(page, screenshots, "chat")

    sources = reply.get_by_role("list", name="Sources")
    await sources.get_by_role("link", name="[1] handbook.md").click()
    await expect(page.get_by_role("dialog", name="[1] handbook.md")).to_be_visible()
    await capture(page, screenshots, "citation")
    await page.keyboard.press("Escape")

    # On a phone the conversation list is a drawer behind the "Conversations" button.
    conversations = page.get_by_role("navigation", name="Conversations")
    toggle = page.get_by_role("button", name="Conversations")
    await expect(toggle).to_be_hidden()
    await page.set_viewport_size(PHONE)
    await expect(conversations).to_be_hidden()
    await toggle.click()
    await expect(conversations).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await page.screenshot(path=screenshots / "conversations-360.png")
    await conversations.get_by_role("link").first.click()
    await expect(conversations).to_be_hidden()
    await page.set_viewport_size(DESKTOP)

    await page.get_by_role("link", name="Account").click()
    await page.get_by_label("Key name").fill("laptop")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_label("New API key")).to_be_visible()
    await capture(page, screenshots, "account")
