"""Hostile text stays text: a reply, a document's text or a filename holding `<script>`, an
`<img onerror>` or a `javascript:` link is shown as what it says, and nothing runs.

The scripted model echoes the question ("You said: <question>"), so a question decides the exact
reply; the checks look at the page's DOM, not only at the CSP (which would block a script that
got in: the console watch of `open_page` fails a test on any CSP report).
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import ConsoleWatch, OpenPage
from tests.web.ui import ask, normalised, reply_body, sign_up, wait_until_written

pytestmark = pytest.mark.browser

SCRIPT = '<script>window.__xss = "script"</script>'
IMAGE = "<img src=x onerror=\"window.__xss = 'image'\">"
MARKDOWN_LINK = "[click me](javascript:window.__xss='markdown-link')"
ANCHOR = "<a href=\"javascript:window.__xss='anchor'\">anchor</a>"
HOSTILE = f"{SCRIPT} {IMAGE} {MARKDOWN_LINK} {ANCHOR}"


async def nothing_ran(page: Page) -> None:
    assert await page.evaluate("window.__xss") is None
    active = page.locator("#messages, #citation-dialog, #document-list").locator(
        "script, img, iframe, object, embed, [onerror], [onclick], [onmouseover]"
    )
    await expect(active).to_have_count(0)
    await expect(page.locator('a[href^="javascript:" i]')).to_have_count(0)


async def test_a_hostile_reply_is_shown_as_text(
    open_page: OpenPage, scripted_server: str, console: ConsoleWatch
) -> None:
    page = await open_page(scripted_server)
    await sign_up(page)
    reply = await ask(page, HOSTILE)
    assert await wait_until_written(reply) == "completed"

    shown = normalised(await reply_body(reply).inner_text())
    assert shown == normalised(f"You said: {SCRIPT} {IMAGE} {MARKDOWN_LINK} {ANCHOR}")
    user = page.locator("#messages li.user .message-body")
    await expect(user).to_have_text(HOSTILE)
    await nothing_ran(page)
    # The page could not insert markup even if it tried: Trusted Types are enforced.
    console.allow("requires 'TrustedHTML' assignment")
    refused = await page.evaluate(
        "() => { try { document.createElement('div').innerHTML = '<b>x</b>'; return null; }"
        " catch (error) { return error.name; } }"
    )
    assert refused == "TypeError"


async def test_a_hostile_document_is_shown_as_text_in_its_citation(
    open_page: OpenPage, scripted_server: str
) -> None:
    page = await open_page(scripted_server)
    await sign_up(page)
    filename = "<img src=x onerror=alert(1)>tide.md"
    document = f"The tide log {SCRIPT} records {IMAGE} every {ANCHOR} high water."
    await page.get_by_role("link", name="Documents").click()
    await page.get_by_label("Upload documents").set_input_files(
        files=[{"name": filename, "mimeType": "text/markdown", "buffer": document.encode()}]
    )
    row = page.locator("li.document", has_text=filename)
    await expect(row.locator(".document-status")).to_have_text("Indexed", timeout=30_000)

    await page.get_by_role("button", name="New chat").click()
    await page.locator("#document-scope summary").click()
    await page.get_by_label("All my documents").check()
    reply = await ask(page, "The tide log records every high water [1]")
    assert await wait_until_written(reply) == "completed"
    marker = reply_body(reply).get_by_role("link", name=f"[1] {filename}")
    await expect(marker).to_have_text("[1]")
    await marker.click()

    dialog = page.get_by_role("dialog", name=f"[1] {filename}")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("mark")).to_have_text(document)
    await nothing_ran(page)


async def test_only_web_addresses_become_links(open_page: OpenPage, scripted_server: str) -> None:
    page = await open_page(scripted_server)
    await sign_up(page)
    reply = await ask(
        page,
        "see [docs](https://example.com/guide) and [mail](mailto:ops@example.com) or "
        "[data](data:text/html,hi) and [relative](/api/users/me)",
    )
    assert await wait_until_written(reply) == "completed"
    links = reply_body(reply).get_by_role("link")
    await expect(links).to_have_count(2)
    await expect(links.first).to_have_attribute("href", "https://example.com/guide")
    await expect(links.first).to_have_attribute("rel", re.compile("noopener"))
    await expect(links.nth(1)).to_have_attribute("href", "mailto:ops@example.com")
    await expect(reply_body(reply)).to_contain_text("[data](data:text/html,hi)")
