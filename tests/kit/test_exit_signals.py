from __future__ import annotations

import signal
from types import FrameType

from genai_service.kit.exit_signals import on_exit_signal
from tests.polling import wait_until


async def test_the_app_hears_the_signal_and_the_servers_own_handler_still_runs() -> None:
    heard: list[str] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        heard.append("server")

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        with on_exit_signal(lambda: heard.append("app")):
            signal.raise_signal(signal.SIGTERM)
            await wait_until(lambda: "app" in heard, within=5)
        assert heard == ["server", "app"]  # the app's part runs on the loop, just after
        assert signal.getsignal(signal.SIGTERM) is server_handler
    finally:
        signal.signal(signal.SIGTERM, original)


async def test_without_a_servers_handler_nothing_is_installed() -> None:
    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with on_exit_signal(lambda: None):
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, original)
