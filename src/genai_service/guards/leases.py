"""The leases of budget reservations: while a process lives it renews its reservations; any
process releases those of processes that stopped.

Every third of the lease, a process extends all its reservations in one UPDATE, settles again
what it could not settle before, and sweeps: reservations no process renewed for a whole lease
are charged in full and recorded as interrupted (`BudgetGuard.sweep`). A process that was
killed mid-call thus holds its callers' tokens for at most a lease, and a reservation is
charged once, by its settlement or by the sweep, never both.
"""

from __future__ import annotations

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError

from genai_service.guards.budget import BudgetGuard
from genai_service.kit.tasks import BackgroundLoop


class ReservationLeases:
    def __init__(self, guard: BudgetGuard) -> None:
        self._guard = guard
        self._loop = BackgroundLoop(self._keep, name="budget-reservation-leases")

    def start(self) -> None:
        """Sweep at once (what a stopped process left), then keep the leases until `stop`."""
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._beat(sweep=False)  # a last try at what could not be settled

    async def _keep(self) -> None:
        interval = self._guard.lease.total_seconds() / 3
        while not self._loop.stopping:
            await self._beat(sweep=True)
            await self._loop.pause(interval)

    async def _beat(self, *, sweep: bool) -> None:
        try:
            await self._guard.renew()
            await self._guard.retry_unsettled()
            if sweep:
                await self._guard.sweep()
        except (SQLAlchemyError, OSError) as error:
            logger.warning("could not renew or sweep budget reservations: {}", error)
