"""The page by role and label, by keyboard alone, and its conversation list (newest activity first,
search by title, rename, delete), against the scripted model ("You said: <question>")."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, Route, expect

from tests.identity import unique_email
from tests.web.conftest import OpenPage
from tests.web.ui import (
    PASSWORD,
    api_as,
    ask,
    conversation_id,
    sign_up,
    wait_until_written,
)

pytestmark = pytest.mark.browser


async def focused(page: Page) -> str:
    """The focused element, named as a test can read it: `tag#id` or `tag:text`."""
    name: str = await page.evaluate(
        "() => { const e = document.activeElement;"
        " return e.id ? `${e.localName}#${e.id}` : `${e.localName}:${e.textContent.trim()}`; }"
    )
    return name


async def test_sign_up_and_send_by_keyboard_alone(
    open_page: OpenPage, scripted_server: str
) -> None:
    page = await open_page(scripted_server)
    await page.goto("/ui")
    keyboard = page.keyboard
    await expect(page.get_by_label("Email")).to_be_focused()
    for _ in range(3):
        await keyboard.press("Tab")
    assert await focused(page) == "button#auth-switch"
    await keyboard.press("Enter")
    assert await focused(page) == "input#auth-email"
    email = unique_email("keyboard")
    await keyboard.type(email)
    await keyboard.press("Tab")
    await keyboard.type(PASSWORD)
    await keyboard.press("Enter")

    message = page.get_by_role("textbox", name="Message")
    await expect(message).to_be_focused()
    await keyboard.type("first line")
    await keyboard.press("Shift+Enter")
    await keyboard.type("second line")
    await keyboard.press("Enter")

    reply = page.locator("#messages li.assistant").last
    assert await wait_until_written(reply) == "completed"
    await expect(page.locator("#messages li.user .message-body")).to_have_text(
        "first line\nsecond line"
    )
    await expect(reply).to_contain_text("You said: first line second line")
    await expect(message).to_be_focused()
    await expect(message).to_have_value("")

    # From the top of the page, the first Tab offers the way to the message box.
    await page.reload()
    await expect(message).to_be_visible()
    await page.get_by_role("link", name="genai-service").focus()
    await keyboard.press("Shift+Tab")
    assert await focused(page) == "a:Skip to the message box"
    await keyboard.press("Enter")
    await expect(message).to_be_focused()


async def test_the_page_by_role_and_label(open_page: OpenPage, scripted_server: str) -> None:
    page = await open_page(scripted_server)
    await sign_up(page)
    await expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
    await expect(page.get_by_role("navigation", name="Sections")).to_be_visible()
    await expect(page.get_by_role("main")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Message")).to_be_editable()
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    await expect(page.get_by_role("combobox", name="Model")).to_contain_text("fake-chat")
    await expect(page.get_by_role("textbox", name="System prompt (optional)")).to_be_visible()
    await expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    # A long question: the scripted model echoes it a word every 30 ms, so Stop is there a while.
    reply = await ask(page, " ".join(f"word{n}" for n in range(60)))
    await expect(page.get_by_role("button", name="Stop")).to_be_visible()
    await expect(page.get_by_role("button", name="Send")).to_be_disabled()
    assert await wait_until_written(reply) == "completed"
    await expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    await expect(page.get_by_role("status").filter(has_text="Reply complete.")).to_be_attached()

    await page.get_by_role("link", name="Documents").click()
    await expect(page.get_by_label("Upload documents")).to_have_attribute("type", "file")
    await expect(page.get_by_role("heading", name="Documents", level=1)).to_be_visible()
    await page.get_by_role("link", name="Account").click()
    await expect(page.get_by_role("textbox", name="Key name")).to_be_visible()


async def test_conversations_are_listed_searched_renamed_and_deleted(
    open_page: OpenPage, scripted_server: str
) -> None:
    page = await open_page(scripted_server)
    await sign_up(page)
    conversations = page.get_by_role("navigation", name="Conversations").get_by_role("link")

    async def chat(question: str, title: str) -> None:
        await page.get_by_role("button", name="New chat").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("New chat")
        assert await wait_until_written(await ask(page, question)) == "completed"
        await page.get_by_role("button", name="Rename").click()
        rename = page.get_by_role("dialog", name="Rename conversation")
        await rename.get_by_label("Title").fill(title)
        await rename.get_by_label("Title").press("Enter")
        await expect(page.get_by_role("heading", level=1)).to_have_text(title)

    await chat("about tides", "Tides")
    await chat("about storms", "Storms")
    await expect(conversations.first).to_contain_text("Storms")
    await expect(conversations.first).to_have_attribute("aria-current", "page")

    await conversations.filter(has_text="Tides").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Tides")
    await expect(page.locator("#messages li.assistant")).to_have_count(1)
    assert await wait_until_written(await ask(page, "more about tides")) == "completed"
    await expect(conversations).to_have_count(2)
    await expect(conversations.first).to_contain_text("Tides")

    await page.get_by_role("searchbox", name="Search conversations").fill("storm")
    await expect(conversations).to_have_count(1)
    await expect(conversations.first).to_contain_text("Storms")
    await page.get_by_role("searchbox", name="Search conversations").fill("")
    await expect(conversations).to_have_count(2)

    await page.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("dialog", name="Delete conversation?")
    await expect(confirm).to_contain_text('"Tides"')
    await confirm.get_by_role("button", name="Delete").click()
    await expect(conversations).to_have_count(1)
    await expect(conversations.first).to_contain_text("Storms")
    await expect(page.get_by_role("heading", level=1)).to_have_text("New chat")


async def test_a_question_sent_while_a_conversation_loads_waits_for_it(
    open_page: OpenPage, scripted_server: str
) -> None:
    """Until the conversation picked is on screen, Send is disabled and Enter does nothing: the
    question would otherwise go to the conversation shown before."""
    page = await open_page(scripted_server)
    email = await sign_up(page)
    conversations = page.get_by_role("navigation", name="Conversations").get_by_role("link")
    assert await wait_until_written(await ask(page, "about tides")) == "completed"
    await page.get_by_role("button", name="New chat").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("New chat")
    assert await wait_until_written(await ask(page, "about storms")) == "completed"
    await expect(conversations).to_have_count(2)
    storms = conversation_id(page)

    loading = asyncio.Event()
    release = asyncio.Event()

    async def held(route: Route) -> None:  # the history of a conversation, once released
        loading.set()
        await release.wait()
        await route.continue_()

    await page.route("**/api/conversations/*/messages?*", held)
    await conversations.nth(1).click()
    await loading.wait()
    message = page.get_by_role("textbox", name="Message")
    await message.fill("more about tides")
    await message.press("Enter")
    await expect(page.get_by_role("button", name="Send")).to_be_disabled()
    release.set()

    replies = page.locator("#messages li.assistant")
    await expect(replies).to_have_count(1)
    await expect(replies.first).to_contain_text("You said: about tides")
    await expect(message).to_have_value("more about tides")
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    assert await wait_until_written(await ask(page, "more about tides")) == "completed"
    async with api_as(scripted_server, email) as api:
        stored = await api.get(f"/api/conversations/{storms}/messages")
    assert [m["content"] for m in stored.json()["items"]] == [
        "about storms",
        "You said: about storms",
    ]
