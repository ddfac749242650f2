"""Accounts in the browser: sign up with the password rules shown as one types, sign out (the
session ends on the server), sign in, a reload that keeps the session, anonymous mode, and API
keys created, copied and revoked."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.async_api import Page, Request, expect

from tests.conftest import FAKE_CHAT_MODEL
from tests.live_server import LiveServer
from tests.web.conftest import SCRIPTED_DAILY_BUDGET, OpenPage
from tests.web.ui import ask, sign_in, sign_up, wait_until_written

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def storage(page: Page) -> dict[str, int]:
    counts: dict[str, int] = await page.evaluate(
        "({local: localStorage.length, session: sessionStorage.length})"
    )
    return counts


async def rules_met(page: Page) -> dict[str, str | None]:
    rules = page.get_by_role("list", name="Password rules").get_by_role("listitem")
    return {
        str(await rule.get_attribute("data-rule")): await rule.get_attribute("data-met")
        for rule in await rules.all()
    }


async def test_sign_up_sign_out_and_sign_in_again(
    open_page: OpenPage, model_server: LiveServer
) -> None:
    page = await open_page(model_server.base_url)
    await page.goto("/ui")
    await page.get_by_role("button", name="Create an account").click()
    password = page.get_by_label("Password", exact=True)
    await password.press_sequentially("abc")
    assert await rules_met(page) == {"length": "false", "digit": "false", "uppercase": "false"}
    await password.press_sequentially("defgH")
    assert await rules_met(page) == {"length": "true", "digit": "false", "uppercase": "true"}
    await password.press_sequentially("1")
    assert await rules_met(page) == {"length": "true", "digit": "true", "uppercase": "true"}
    await password.fill("")

    email = await sign_up(page)
    await expect(page.locator("#who")).to_have_text(email)
    assert await storage(page) == {"local": 0, "session": 0}

    # A reload keeps the session: the refresh token waits in sessionStorage only meanwhile.
    await page.reload()
    await expect(page.locator("#who")).to_have_text(email)
    assert await storage(page) == {"local": 0, "session": 0}

    ended: list[str] = []

    def logout(request: Request) -> None:
        if request.url.endswith("/api/auth/logout"):
            ended.append(json.loads(request.post_data or "{}")["refresh_token"])

    page.on("request", logout)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert len(ended) == 1
    async with httpx.AsyncClient(base_url=model_server.base_url) as client:
        refused = await client.post("/api/auth/refresh", json={"refresh_token": ended[0]})
    assert refused.status_code == 401

    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill("Not-The-Password-1")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert").first).to_have_text("Incorrect email or password.")
    await sign_in(page, email)
    await expect(page.locator("#who")).to_have_text(email)


async def test_anonymous_mode_is_offered_when_the_server_allows_it(
    open_page: OpenPage, model_server: LiveServer
) -> None:
    page = await open_page(model_server.base_url)
    await page.goto("/ui")
    await page.get_by_role("button", name="Continue without an account").click()
    await expect(page.locator("#who")).to_have_text("Anonymous")
    await page.get_by_role("link", name="Account").click()
    await expect(page.get_by_text("Sign in with an account to create API keys.")).to_be_visible()
    await expect(page.get_by_role("button", name="Create key")).to_be_hidden()
    # The anonymous account's usage, shared by everyone without an account: no limit by default.
    usage = page.locator("#usage")
    await expect(usage).to_contain_text(re.compile(r"Today.*tokens used \(no limit\)"))


async def test_an_api_key_is_shown_once_copied_and_revoked(
    open_page: OpenPage, model_server: LiveServer
) -> None:
    page = await open_page(model_server.base_url)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await sign_up(page)
    await page.get_by_role("link", name="Account").click()
    await page.get_by_label("Key name").fill("laptop")
    await page.get_by_role("button", name="Create key").click()

    shown = page.get_by_label("New API key")
    await expect(shown).to_have_text(re.compile(r"^gsk_\S{20,}$"))
    secret = await shown.inner_text()
    await page.locator("#new-key").get_by_role("button", name="Copy").click()
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    keys = page.get_by_role("list", name="Your API keys")
    await expect(keys.get_by_role("listitem")).to_have_count(1)
    await expect(keys).to_contain_text("laptop")
    await expect(keys).not_to_contain_text(secret)
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=model_server.base_url, headers=headers) as client:
        assert (await client.get("/v1/models")).status_code == 200

        await keys.get_by_role("button", name="Revoke laptop").click()
        confirm = page.get_by_role("dialog", name="Revoke API key?")
        await confirm.get_by_role("button", name="Revoke").click()

        await expect(keys.get_by_role("listitem")).to_have_count(0)
        assert (await client.get("/v1/models")).status_code == 401


async def test_usage_shows_the_days_budget_and_the_calls_per_model(
    open_page: OpenPage, scripted_server: str
) -> None:
    page = await open_page(scripted_server)
    await sign_up(page)
    reply = await ask(page, "how many tokens is this")
    assert await wait_until_written(reply) == "completed"
    await page.get_by_role("link", name="Account").click()
    await expect(page.get_by_role("heading", name="Usage and limits")).to_be_visible()
    usage = page.locator("#usage")
    limit = f"{SCRIPTED_DAILY_BUDGET:,}"
    today = re.compile(rf"Today[1-9][\d,]* tokens? of {limit} tokens used, [\d,]+ tokens? left")
    month = re.compile(r"This month[1-9][\d,]* tokens? used \(no limit\)")
    await expect(usage).to_contain_text(today)
    await expect(usage).to_contain_text(month)
    # The turn, and its generated title when that has ended too.
    await expect(usage).to_contain_text(re.compile(rf"{FAKE_CHAT_MODEL}(1 call|2 calls), "))
