"""The Redis the server processes share: one client per process, names under one prefix, and
one error for every way Redis can fail a request.

A Redis failure is never hidden: what needs Redis answers `503` (`RedisUnavailable`) while it
is unreachable, so no process silently goes back to counting or signalling on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from loguru import logger
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from genai_service.kit.errors import ServiceUnavailable
from genai_service.settings import RedisSettings

RETRY_AFTER_SECONDS = 5


class RedisUnavailable(ServiceUnavailable):
    title = "Redis unavailable"
    slug = "redis-unavailable"


@contextlib.contextmanager
def redis_required(
    action: str, *, unavailable: type[RedisUnavailable] = RedisUnavailable
) -> Iterator[None]:
    """Turn a failure to reach Redis while doing `action` into a `503` problem (`unavailable`:
    one naming what stopped). A refused command (a script error, a wrong type) is a bug, not an
    outage, and is raised as it is."""
    try:
        yield
    except ResponseError:
        raise
    except (RedisError, OSError) as error:
        logger.warning("redis: {} failed: {}", action, type(error).__name__)
        raise unavailable(
            f"Redis, which this server shares with its other processes, did not answer while "
            f"{action}; retry shortly.",
            retry_after=RETRY_AFTER_SECONDS,
        ) from None


class SharedRedis:
    """A process's client for commands, and the prefix every key and channel is named under."""

    def __init__(self, client: Redis, *, prefix: str, url: str, timeout: float) -> None:
        self.client = client
        self.prefix = prefix
        self._url = url
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> SharedRedis:
        if settings.url is None:
            raise ValueError("redis.url is not set")
        return cls(
            _client(settings.url, settings.timeout, socket_timeout=settings.timeout),
            prefix=settings.key_prefix,
            url=settings.url,
            timeout=settings.timeout,
        )

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def subscriber_client(self) -> Redis:
        """A client of its own for a pub/sub connection: it reads with no timeout (a quiet
        channel is not a failure) and never reconnects behind its owner's back (a reconnect
        means messages may have been missed, which the owner must know)."""
        return _client(self._url, self._timeout, socket_timeout=None, retries=0)

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError) as error:
            logger.warning("readiness: redis check failed: {}", type(error).__name__)
            return False

    async def close(self) -> None:
        await self.client.aclose()


def _client(url: str, timeout: float, *, socket_timeout: float | None, retries: int = 1) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), retries),
        health_check_interval=0,
    )
