"""The writer of the budget guard's batches: every `ledger_flush_seconds`, sooner when a batch
is full, and a last time when the process stops (giving back every allotment)."""

from __future__ import annotations

import asyncio
import contextlib

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError

from genai_service.guards.budget import BudgetGuard
from genai_service.kit.tasks import cancel_and_wait


class ChargeFlusher:
    def __init__(self, guard: BudgetGuard) -> None:
        self._guard = guard
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name="budget-charge-flusher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        await self._flush(closing=True)

    async def _keep(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._guard.flush_seconds):
                    await self._guard.batch_full.wait()
            await self._flush(closing=False)

    async def _flush(self, *, closing: bool) -> None:
        try:
            await self._guard.flush(closing=closing)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("could not write the usage of ended model calls yet: {}", error)
