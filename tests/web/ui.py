"""What a user does on the web chat page, as steps for the browser tests, and the API checks
that compare what the page shows with what the server stored."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from playwright.async_api import Locator, Page, expect

from tests.identity import unique_email

PASSWORD = "Analytical-Engine-1843"
REPLY_TIMEOUT_MS = 90_000
"""A reply of the real model on a loaded two-core machine: generous, waited for, not slept."""

HANDBOOK = """# Lighthouse handbook

## Arrival

New keepers arrive on the supply boat and spend their first week beside the senior keeper. They
learn the lamp, the radio, the fog signal and the logbook before they keep a night watch alone.
The senior keeper signs the handover sheet when the new keeper has shown each task twice.

## Supplies

Supplies arrive by boat on the first Monday of each month. The keeper signs for the crates at
the north landing and stores lamp oil in the dry cellar, away from the generator. Fresh water
comes in sealed drums; the keeper checks every seal and writes the count in the logbook.

## The lamp

The lamp is lit thirty minutes before sunset and put out thirty minutes after sunrise. Each
morning the keeper cleans the lens with a soft cloth, trims the wick and polishes the brass. A
cracked pane is reported the same day, and the spare pane in the lamp room is fitted at once.

## Storms

When the barometer falls below 990 hectopascals the keeper lights the storm lamp, closes the
gallery shutters and reports to the coast guard every two hours by radio. Nobody goes onto the
gallery in winds above force eight; the storm lamp is checked from the lamp room instead.

## Visitors

Visitors may climb the tower on Sundays between two and four in the afternoon, ten at a time.
They sign the visitors' book at the door and leave bags in the oil store. Children climb with an
adult. The keeper closes the tower early when the wind is strong or the stairs are wet.
"""


async def sign_up(page: Page, email: str | None = None) -> str:
    """Create an account on the sign-in screen; returns its email once the workspace shows."""
    email = email or unique_email("ui")
    await page.goto("/ui")
    await page.get_by_role("button", name="Create an account").click()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Create an account").click()
    await expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
    return email


async def sign_in(page: Page, email: str) -> None:
    await page.goto("/ui")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()


async def upload(page: Page, name: str, content: bytes) -> None:
    await page.get_by_role("link", name="Documents").click()
    await page.get_by_label("Upload documents").set_input_files(
        files=[{"name": name, "mimeType": "text/markdown", "buffer": content}]
    )


async def use_all_documents(page: Page) -> None:
    await page.locator("#document-scope summary").click()
    await page.get_by_label("All my documents").check()


async def set_max_tokens(page: Page, max_tokens: int) -> None:
    options = page.locator("details.reply-options")
    if await options.get_attribute("open") is None:
        await options.locator("summary").click()
    await page.get_by_label("Max tokens").fill(str(max_tokens))


async def ask(page: Page, question: str) -> Locator:
    """Send a question; returns the reply that answers it (streaming, or already written)."""
    replies = page.locator("#messages li.assistant")
    before = await replies.count()
    await page.get_by_role("textbox", name="Message").fill(question)
    await page.get_by_role("button", name="Send").click()
    await expect(replies).to_have_count(before + 1)
    return replies.nth(before)


def reply_body(reply: Locator) -> Locator:
    return reply.locator(".message-body")


async def wait_until_written(reply: Locator) -> str:
    """Wait for the reply's end; returns its status (completed, cancelled or failed)."""
    await expect(reply).to_have_attribute(
        "data-status", re.compile("completed|cancelled|failed"), timeout=REPLY_TIMEOUT_MS
    )
    status = await reply.get_attribute("data-status")
    assert status is not None
    return status


def conversation_id(page: Page) -> str:
    match = re.search(r"#/chat/([0-9a-f-]{36})$", page.url)
    assert match, f"not on a conversation: {page.url}"
    return match.group(1)


@asynccontextmanager
async def api_as(base_url: str, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API as the account `email`, signed in with a session of its own."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        form = {"username": email, "password": PASSWORD}
        tokens = await client.post("/api/auth/token", data=form)
        assert tokens.status_code == 200, tokens.text
        client.headers["Authorization"] = f"Bearer {tokens.json()['access_token']}"
        yield client


async def stored_messages(client: httpx.AsyncClient, conversation: str) -> list[dict[str, Any]]:
    url = f"/api/conversations/{conversation}/messages"
    response = await client.get(url, params={"limit": 100})
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["items"]
    return messages


def normalised(text: str) -> str:
    """Text as the page shows it, whitespace aside (Markdown line breaks become spaces or lines)."""
    return " ".join(text.split())
