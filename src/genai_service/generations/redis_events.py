"""The event log on Redis: one stream per generation, shared by every server process.

A generation's events are entries of the stream `<prefix>generation:<id>:events`. The entry of
event `n` has the stream id `n-1`, so `Last-Event-ID: n` is an `XREAD` after `n-1` and numbers
never depend on the clock; the entry `0-1` marks an opened log with no events yet. Appending is
one script (number, refuse after the end, add, set the expiry), so two processes ending the same
generation (its writer, and one giving it up as orphaned) cannot interleave. A running log
expires once its generation could no longer be running; a finished one `retention` after its
end.

A cancel request is a key (read by the writer when it starts waiting, and after every gap in its
signals) and a signal to every process (the writer acts on it at once).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

from loguru import logger
from redis.exceptions import RedisError, ResponseError

from genai_service.generations.events import (
    TERMINAL_EVENTS,
    EventsExpired,
    EventType,
    GenerationEvent,
)
from genai_service.kit.redis_client import SharedRedis, redis_required
from genai_service.kit.redis_signals import RedisSignals

CANCEL_CHANNEL = "generation-cancel"
OPENED_ENTRY = "0-1"
FOLLOW_BLOCK_MS = 1000
"""How long one read of a follower waits for new events before it looks whether the log ended."""
READ_COUNT = 256

Entries = list[tuple[str, dict[str, str]]]
"""Stream entries as the client returns them (RESP2, decoded): `(id, fields)` pairs."""

APPEND_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('GENAI_EXPIRED')
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local last_type = last[2][2]
if last_type == 'done' or last_type == 'error' then
  return redis.error_reply('GENAI_ENDED')
end
local number = redis.call('XLEN', KEYS[1])
redis.call('XADD', KEYS[1], number .. '-1', 'type', ARGV[1], 'data', ARGV[2])
if ARGV[1] == 'done' or ARGV[1] == 'error' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return number
"""


class RedisEventLog:
    """The `EventLog` of every process sharing one Redis."""

    def __init__(
        self,
        redis: SharedRedis,
        signals: RedisSignals,
        *,
        retention_seconds: float,
        running_seconds: float,
    ) -> None:
        """`running_seconds`: how long the log of a generation that never ends is kept (the
        longest a generation may run, plus the retention)."""
        self._redis = redis
        self._signals = signals
        self.retention_seconds = retention_seconds
        self._running_ms = round(running_seconds * 1000)
        self._append = redis.client.register_script(APPEND_SCRIPT)
        self._cancel_waiters: dict[uuid.UUID, asyncio.Event] = {}
        self._rechecks: set[asyncio.Task[None]] = set()
        signals.listen(CANCEL_CHANNEL, self._cancel_signalled)
        signals.on_gap(self._recheck_cancels)

    @property
    def _retention_ms(self) -> int:
        return max(round(self.retention_seconds * 1000), 1)

    def _events_key(self, generation_id: uuid.UUID) -> str:
        return self._redis.key("generation", str(generation_id), "events")

    def _cancel_key(self, generation_id: uuid.UUID) -> str:
        return self._redis.key("generation", str(generation_id), "cancel")

    async def open(self, generation_id: uuid.UUID) -> None:
        key = self._events_key(generation_id)
        with redis_required("opening a generation's event log"):
            async with self._redis.client.pipeline(transaction=True) as pipe:
                pipe.delete(key, self._cancel_key(generation_id))
                pipe.xadd(key, {"type": "opened", "data": "{}"}, id=OPENED_ENTRY)
                pipe.pexpire(key, self._running_ms)
                await pipe.execute()

    async def append(
        self, generation_id: uuid.UUID, type: EventType, data: dict[str, Any]
    ) -> GenerationEvent:
        payload = json.dumps(data, separators=(",", ":"))
        key = self._events_key(generation_id)
        try:
            with redis_required("writing a generation event"):
                number = await self._append(
                    keys=[key],
                    args=[type, payload, self._running_ms, self._retention_ms],
                )
        except ResponseError as error:
            if "GENAI_EXPIRED" in str(error):
                raise _expired() from None
            if "GENAI_ENDED" in str(error):
                raise RuntimeError(
                    f"the event log of generation {generation_id} has ended"
                ) from None
            raise
        return GenerationEvent(id=int(number), type=type, data=data)

    async def subscribe(
        self, generation_id: uuid.UUID, *, after: int = 0
    ) -> AsyncIterator[GenerationEvent]:
        key = self._events_key(generation_id)
        with redis_required("reading a generation's events"):
            exists = await self._redis.client.exists(key)
        if not exists:
            raise _expired()
        return self._follow(key, max(after, 0))

    async def _follow(self, key: str, after: int) -> AsyncIterator[GenerationEvent]:
        position = f"{after}-1" if after > 0 else OPENED_ENTRY
        client = self._redis.client
        while True:
            with redis_required("reading a generation's events"):
                read = cast(
                    list[tuple[str, Entries]],
                    await client.xread({key: position}, count=READ_COUNT, block=FOLLOW_BLOCK_MS),
                )
            entries = read[0][1] if read else []
            for entry_id, fields in entries:
                position = entry_id
                event = GenerationEvent(
                    id=int(entry_id.split("-", 1)[0]),
                    type=cast(EventType, fields["type"]),
                    data=json.loads(fields["data"]),
                )
                yield event
                if event.is_terminal:
                    return
            if not entries and await self._ended(key):
                return

    async def _ended(self, key: str) -> bool:
        """The log ended before the position read from (or expired meanwhile)."""
        with redis_required("reading a generation's events"):
            last = cast(Entries, await self._redis.client.xrevrange(key, count=1))
        return not last or last[0][1].get("type") in TERMINAL_EVENTS

    async def request_cancel(self, generation_id: uuid.UUID) -> None:
        """Reaches the writer wherever it runs, also when its event log expired."""
        with redis_required("sending a cancel request"):
            await self._redis.client.set(self._cancel_key(generation_id), "1", px=self._running_ms)
        await self._signals.publish(CANCEL_CHANNEL, str(generation_id))

    async def wait_for_cancel(self, generation_id: uuid.UUID) -> None:
        """Never fails on a Redis outage: the request is looked for again once signals resume."""
        requested = self._cancel_waiters.setdefault(generation_id, asyncio.Event())
        try:
            if await self._cancel_requested(generation_id):
                return
            await requested.wait()
        finally:
            if self._cancel_waiters.get(generation_id) is requested:
                del self._cancel_waiters[generation_id]

    async def _cancel_requested(self, generation_id: uuid.UUID) -> bool:
        try:
            return bool(await self._redis.client.exists(self._cancel_key(generation_id)))
        except (RedisError, OSError) as error:
            logger.warning("redis: could not look for a cancel request: {}", type(error).__name__)
            return False

    def _cancel_signalled(self, message: str) -> None:
        try:
            generation_id = uuid.UUID(message)
        except ValueError:
            logger.warning("redis: a cancel signal named no generation")
            return
        waiter = self._cancel_waiters.get(generation_id)
        if waiter is not None:
            waiter.set()

    def _recheck_cancels(self) -> None:
        for generation_id, waiter in list(self._cancel_waiters.items()):
            task = asyncio.get_running_loop().create_task(self._recheck(generation_id, waiter))
            self._rechecks.add(task)
            task.add_done_callback(self._rechecks.discard)

    async def _recheck(self, generation_id: uuid.UUID, waiter: asyncio.Event) -> None:
        if await self._cancel_requested(generation_id):
            waiter.set()


def _expired() -> EventsExpired:
    return EventsExpired(
        "The events of this generation are no longer kept; read the stored messages instead."
    )
