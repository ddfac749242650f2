"""Signals between the server processes: Redis pub/sub, one connection per process.

Pub/sub delivers a message only to the processes listening when it is published. So a listener
learns of every gap: `on_gap` callbacks run whenever the connection is lost (and again once it is
back), and whoever relies on signals (a cache that trusts its entries until told otherwise)
stops relying on them meanwhile. Signals that must not be lost (a cancel request) are also
written to a key the receiver reads after each gap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from loguru import logger
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from genai_service.kit.redis_client import SharedRedis, redis_required
from genai_service.kit.tasks import BackgroundLoop

READ_INTERVAL_S = 1.0
RECONNECT_DELAY_S = 1.0

Handler = Callable[[str], None]


class RedisSignals:
    """Channels are listened to from `start` to `stop`; handlers run on the event loop, one
    message at a time, and must not block."""

    def __init__(self, redis: SharedRedis, *, ping_seconds: float) -> None:
        self._redis = redis
        self._ping_seconds = ping_seconds
        self._handlers: dict[str, list[Handler]] = {}
        self._gap_handlers: list[Callable[[], None]] = []
        self._connected = asyncio.Event()
        self._loop = BackgroundLoop(self._listen, name="redis-signals")

    @property
    def connected(self) -> bool:
        """Listening now: every message published from here on reaches this process."""
        return self._connected.is_set()

    def listen(self, channel: str, handler: Handler) -> None:
        """Call `handler` with every message published on `channel` (before `start`)."""
        self._handlers.setdefault(self._redis.key("signal", channel), []).append(handler)

    def on_gap(self, handler: Callable[[], None]) -> None:
        """Call `handler` whenever messages may have been missed: the connection was lost, and
        again when listening resumes."""
        self._gap_handlers.append(handler)

    async def publish(self, channel: str, message: str) -> None:
        with redis_required("sending a signal to the other server processes"):
            await self._redis.client.publish(self._redis.key("signal", channel), message)

    async def start(self) -> None:
        """Start listening, waiting (up to the Redis timeout) for the first subscription."""
        self._loop.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._ping_seconds):
                await self._connected.wait()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _listen(self) -> None:
        while not self._loop.stopping:
            client = self._redis.subscriber_client()
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._handlers)
                self._connected.set()
                self._gap()
                await self._read(pubsub)
            except (RedisError, OSError) as error:
                if self._connected.is_set():
                    logger.warning("redis: lost the signals connection: {}", type(error).__name__)
            finally:
                was_connected = self._connected.is_set()
                self._connected.clear()
                if was_connected:
                    self._gap()
                # Shielded: a loop that does not stop in time is cancelled until it ends, and
                # the connection must still be closed.
                await asyncio.shield(_close(pubsub, client))
            await self._loop.pause(RECONNECT_DELAY_S)

    async def _read(self, pubsub: PubSub) -> None:
        """Dispatch messages; when the connection has been quiet for `ping_seconds`, ping it, and
        take it for lost when the ping is not answered within as long again."""
        loop = asyncio.get_running_loop()
        last_heard = last_ping = loop.time()
        while not self._loop.stopping:
            message = await pubsub.get_message(timeout=min(READ_INTERVAL_S, self._ping_seconds))
            now = loop.time()
            if message is not None:
                last_heard = now
                if message.get("type") == "message":
                    self._dispatch(str(message["channel"]), str(message["data"]))
            if last_ping > last_heard and now - last_ping > self._ping_seconds:
                raise TimeoutError("no answer to a ping on the signals connection")
            if now - max(last_heard, last_ping) >= self._ping_seconds:
                last_ping = now
                await pubsub.ping()

    def _dispatch(self, channel: str, data: str) -> None:
        for handler in self._handlers.get(channel, ()):
            try:
                handler(data)
            except Exception:  # one broken handler must not stop the signals of the others
                logger.exception("a handler of redis channel {} failed", channel)

    def _gap(self) -> None:
        for handler in self._gap_handlers:
            handler()


async def _close(pubsub: PubSub, client: Redis) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()
    with contextlib.suppress(RedisError, OSError):
        await client.aclose()
