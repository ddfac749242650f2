"""The leases of `max_concurrent` slots: while a process lives it renews the slots of its calls
in flight, a third of a lease apart, so a call may run longer than a lease and a slot of a
process that stopped comes back after one lease at most (in a store the processes share)."""

from __future__ import annotations

from loguru import logger

from genai_service.guards.rate_limits.errors import RateLimitsUnavailable
from genai_service.guards.rate_limits.guard import RateLimitGuard
from genai_service.kit.tasks import BackgroundLoop


class SlotLeases:
    def __init__(self, guard: RateLimitGuard) -> None:
        self._guard = guard
        self._loop = BackgroundLoop(self._keep, name="rate-limit-slot-leases")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _keep(self) -> None:
        interval = self._guard.lease_seconds / 3
        while True:
            await self._loop.pause(interval)
            if self._loop.stopping:
                return
            try:
                await self._guard.renew()
            except RateLimitsUnavailable:
                logger.warning("rate limits: could not renew the slots of calls in flight")
