"""What the server builds at startup is frozen out of the garbage collector's way while it serves,
and handed back when it stops."""

from __future__ import annotations

import gc

from asgi_lifespan import LifespanManager

from genai_service.app import create_app
from genai_service.settings import Settings
from tests.conftest import make_fake_models


async def test_startup_objects_are_frozen_while_the_server_runs(settings: Settings) -> None:
    gc.unfreeze()
    application = create_app(settings, models=make_fake_models())
    async with LifespanManager(application, startup_timeout=60):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
