"""The writer of the budget guard's batches: every `ledger_flush_seconds`, sooner when a batch
is full, and a last time when the process stops (giving back every allotment)."""

from __future__ import annotations

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError

from genai_service.guards.budget import BudgetGuard
from genai_service.kit.tasks import BackgroundLoop


class ChargeFlusher:
    def __init__(self, guard: BudgetGuard) -> None:
        self._guard = guard
        self._loop = BackgroundLoop(self._keep, name="budget-charge-flusher")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._flush(closing=True)

    async def _keep(self) -> None:
        while True:
            await self._loop.pause(self._guard.flush_seconds, wake=self._guard.batch_full)
            if self._loop.stopping:
                return  # `stop` flushes a last time
            await self._flush(closing=False)

    async def _flush(self, *, closing: bool) -> None:
        try:
            await self._guard.flush(closing=closing)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("could not write the usage of ended model calls yet: {}", error)
