"""Browser tests of the web chat page: Debian's Chromium, driven by Playwright, against real
servers.

Two servers: `model_server`, a `genai-service serve` process with the real embedded models (the
page as a user meets it), and `scripted_server`, the app with the deterministic scripted model in
this test process, for replies whose exact text a test needs (hostile Markdown, say).

The page's browser console is watched: an uncaught error, a CSP violation or any other console
error fails the test that caused it. ("Failed to load resource" lines are left out: the page meets
expected error statuses, such as 404 from `/api/usage/me` on a server without usage accounting.)
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

from genai_service.app import create_app
from genai_service.inference.base import ChatChunk, ChatRequest, ProviderError
from genai_service.inference.registry import ModelRegistry
from genai_service.runtime import runtime_of
from genai_service.settings import Limits, LimitsSettings
from tests.conftest import FAKE_CHAT_MODEL, FAKE_EMBEDDING_MODEL, make_settings
from tests.conversations.support import serve
from tests.fakes import FakeEmbeddingModel, ScriptedChatModel
from tests.live_server import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
# Chromium calls out on its own (updates, sync, field trials, QUIC probes); without these switches
# those calls are refused here many at a time. Playwright gives each launch a fresh profile
# (its own temporary --user-data-dir).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
SCRIPTED_CHUNK_DELAY_S = 0.03
"""The scripted model writes a word every 30 ms: long enough to see a reply run and stop it."""

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

OpenPage = Callable[..., Awaitable[Page]]
FAILS_ONCE_MODEL = "fails-once"


class FailsOnceChatModel(ScriptedChatModel):
    """Its first reply breaks off after two words (the model server went away, say); every later
    reply is the scripted model's."""

    def __init__(self) -> None:
        super().__init__(chunk_delay=SCRIPTED_CHUNK_DELAY_S)
        self.broke = False

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        breaking, self.broke = not self.broke, True
        async with aclosing(super().stream(request)) as chunks:
            sent = 0
            async for chunk in chunks:
                if breaking and sent == 2:
                    raise ProviderError("The model server went away.")
                sent += 1
                yield chunk


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Debian's Chromium is missing at {CHROMIUM}: `make system-deps` installs it")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`genai-service serve` with the real models, development settings (anonymous mode on)."""
    live = LiveServer(Path(tmp_path_factory.mktemp("ui-live")) / "data")
    live.start()
    try:
        yield live
    finally:
        live.stop()


SCRIPTED_DAILY_BUDGET = 100_000


@pytest.fixture(scope="module")
async def scripted_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The app with the scripted model (it answers "You said: <question>") on a loopback port.
    Users have a daily budget of `SCRIPTED_DAILY_BUDGET` tokens, which no test comes near."""
    data = Path(tmp_path_factory.mktemp("ui-scripted"))
    limits = LimitsSettings(user=Limits(tokens_per_day=SCRIPTED_DAILY_BUDGET))
    settings = make_settings(data, f"sqlite+aiosqlite:///{data / 'ui.db'}", limits=limits)
    models = ModelRegistry(
        chat={
            FAKE_CHAT_MODEL: ScriptedChatModel(chunk_delay=SCRIPTED_CHUNK_DELAY_S),
            FAILS_ONCE_MODEL: FailsOnceChatModel(),
        },
        embeddings={FAKE_EMBEDDING_MODEL: FakeEmbeddingModel()},
        default_chat=FAKE_CHAT_MODEL,
        default_embedding=FAKE_EMBEDDING_MODEL,
    )
    app = create_app(settings, models=models)
    async with LifespanManager(app, startup_timeout=60):
        await runtime_of(app).models.start()
        async for url in serve(app):
            yield url


class ConsoleWatch:
    """Errors the pages of a test reported; a test that provokes one on purpose allows it."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.allowed: list[str] = []

    def allow(self, text: str) -> None:
        self.allowed.append(text)

    def message(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error: {message.text}")

    def uncaught(self, error: Error) -> None:
        self.problems.append(f"uncaught: {error}")

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(text in p for text in self.allowed)]


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
async def open_page(browser: Browser, console: ConsoleWatch) -> AsyncIterator[OpenPage]:
    """Opens pages, each in a fresh browser context (its own storage), and checks the console."""
    contexts = []

    async def open_page(
        base_url: str, *, viewport: dict[str, int] = DESKTOP, context_of: Page | None = None
    ) -> Page:
        """A new page on `base_url`; `context_of`: another tab in that page's browser context."""
        if context_of is None:
            context = await browser.new_context(base_url=base_url, viewport=viewport)
            context.set_default_timeout(30_000)
            contexts.append(context)
        else:
            context = context_of.context
        page = await context.new_page()
        page.on("console", console.message)
        page.on("pageerror", console.uncaught)
        return page

    yield open_page
    for context in contexts:
        await context.close()
    assert console.unexpected() == [], "the page reported errors"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save the page's main screens: docs/screenshots with GENAI_UI_SCREENSHOTS=1
    (`make screenshots`, to refresh the pictures in the docs), else a temporary folder, so that a
    test run leaves the checkout as it was."""
    if os.environ.get("GENAI_UI_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS
    return Path(tmp_path_factory.mktemp("screenshots"))
