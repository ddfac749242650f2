"""Streaming replies in the browser, with the real model: text that grows as it arrives, Stop, a
reload in the middle of a reply, and a second tab that follows (and stops) the same reply."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Locator, Page, Request, Response, expect

from tests.live_server import LiveServer
from tests.web.conftest import OpenPage
from tests.web.ui import (
    api_as,
    ask,
    conversation_id,
    normalised,
    reply_body,
    set_max_tokens,
    sign_in,
    sign_up,
    stored_messages,
    wait_until_written,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

STORY = "Write a long story about a lighthouse keeper and a storm at sea."

# Resolves with the distinct lengths the reply's text had while it was still running (called
# with the reply's element; it stops listening when the reply ends or after 60 s).
LENGTHS_WHILE_RUNNING = """reply => new Promise(resolve => {
  const body = reply.querySelector(".message-body");
  const lengths = new Set();
  const finish = () => { observer.disconnect(); resolve([...lengths]); };
  const check = () => {
    if (reply.dataset.status !== "running") return finish();
    if (body.textContent.length > 0) lengths.add(body.textContent.length);
    if (lengths.size >= 3) finish();
  };
  const observer = new MutationObserver(check);
  observer.observe(reply, {subtree: true, childList: true, characterData: true, attributes: true});
  setTimeout(finish, 60000);
  check();
})"""


async def copied_text(page: Page, reply: Locator) -> str:
    """The reply's own text (its Markdown source), through its Copy button and the clipboard."""
    await reply.get_by_role("button", name="Copy").click()
    text: str = await page.evaluate("navigator.clipboard.readText()")
    return text


async def has_text(body: Locator, characters: int) -> None:
    await expect(body).to_have_text(re.compile(rf"\S[\s\S]{{{characters},}}"), timeout=60_000)


async def test_a_reply_grows_on_screen_as_it_streams(
    open_page: OpenPage, model_server: LiveServer
) -> None:
    page = await open_page(model_server.base_url)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    email = await sign_up(page)
    await set_max_tokens(page, 48)
    reply = await ask(page, STORY)

    lengths = await reply.evaluate(LENGTHS_WHILE_RUNNING)
    assert len(lengths) >= 3, f"the text did not grow while the reply ran: {lengths}"
    assert lengths == sorted(lengths)
    assert await wait_until_written(reply) == "completed"
    await expect(reply).to_have_attribute("data-text-source", "stream")

    async with api_as(model_server.base_url, email) as api:
        stored = (await stored_messages(api, conversation_id(page)))[-1]
    assert stored["role"] == "assistant"
    assert await copied_text(page, reply) == stored["content"]
    assert normalised(await reply_body(reply).inner_text()) != ""


async def test_stop_ends_the_reply_and_keeps_what_was_written(
    open_page: OpenPage, model_server: LiveServer
) -> None:
    page = await open_page(model_server.base_url)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    email = await sign_up(page)
    await set_max_tokens(page, 400)
    reply = await ask(page, STORY)
    stop = page.get_by_role("button", name="Stop")
    await expect(stop).to_be_visible()
    await expect(page.get_by_role("button", name="Send")).to_be_disabled()
    await has_text(reply_body(reply), 10)

    await stop.click()

    assert await wait_until_written(reply) == "cancelled"
    await expect(reply.locator(".badge")).to_have_text("Stopped")
    await expect(stop).to_be_hidden()
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    async with api_as(model_server.base_url, email) as api:
        stored = (await stored_messages(api, conversation_id(page)))[-1]
    assert stored["status"] == "cancelled"
    assert await copied_text(page, reply) == stored["content"]


async def test_a_reload_mid_reply_picks_up_the_same_reply(
    open_page: OpenPage, model_server: LiveServer
) -> None:
    page = await open_page(model_server.base_url)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    generations: list[str] = []
    resumed_after: list[str | None] = []

    def started(response: Response) -> None:
        if response.request.method == "POST" and response.url.endswith("/messages"):
            generations.append(response.headers.get("x-generation-id", ""))

    def resumed(request: Request) -> None:
        if re.search(r"/api/generations/[0-9a-f-]+/events$", request.url):
            resumed_after.append(request.headers.get("last-event-id"))

    page.on("response", started)
    page.on("request", resumed)
    email = await sign_up(page)
    await set_max_tokens(page, 160)
    reply = await ask(page, STORY)
    await has_text(reply_body(reply), 40)
    before_reload = normalised(await reply_body(reply).inner_text())
    async with api_as(model_server.base_url, email) as api:
        generation = (await api.get(f"/api/generations/{generations[0]}")).json()
        assert generation["status"] == "running", "the reply ended before the reload"

        await page.reload()

        reply = page.locator("#messages li.assistant").last
        assert await wait_until_written(reply) == "completed"
        stored = (await stored_messages(api, conversation_id(page)))[-1]
    assert len(resumed_after) == 1
    assert resumed_after[0] is not None
    assert int(resumed_after[0]) > 1
    await expect(reply).to_have_attribute("data-text-source", "stream")
    assert await copied_text(page, reply) == stored["content"]
    assert normalised(await reply_body(reply).inner_text()).startswith(before_reload[:30])
    await expect(page.locator("#messages li.assistant")).to_have_count(1)
    # What was parked for the reload (the session, the reply so far) left storage at once.
    assert await page.evaluate("[localStorage.length, sessionStorage.length]") == [0, 0]


async def test_another_tab_follows_the_reply_and_can_stop_it(
    open_page: OpenPage, model_server: LiveServer
) -> None:
    first = await open_page(model_server.base_url)
    await first.context.grant_permissions(["clipboard-read", "clipboard-write"])
    email = await sign_up(first)
    await set_max_tokens(first, 400)
    first_reply = await ask(first, STORY)
    await has_text(reply_body(first_reply), 10)

    second = await open_page(model_server.base_url, context_of=first)
    await sign_in(second, email)
    await second.goto(f"/ui#/chat/{conversation_id(first)}")
    second_reply = second.locator("#messages li.assistant").last
    await expect(second_reply).to_have_attribute("data-status", "running")
    lengths = await second_reply.evaluate(LENGTHS_WHILE_RUNNING)
    assert len(lengths) >= 3, f"the second tab did not follow the reply: {lengths}"

    await second.get_by_role("button", name="Stop").click()

    assert await wait_until_written(second_reply) == "cancelled"
    assert await wait_until_written(first_reply) == "cancelled"
    async with api_as(model_server.base_url, email) as api:
        stored = (await stored_messages(api, conversation_id(first)))[-1]
    assert await copied_text(first, first_reply) == stored["content"]
    assert await copied_text(second, second_reply) == stored["content"]
