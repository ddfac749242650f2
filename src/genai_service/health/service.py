from __future__ import annotations

import asyncio

from loguru import logger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genai_service.inference.registry import ModelRegistry
from genai_service.kit.redis_client import SharedRedis
from genai_service.kit.redis_signals import RedisSignals
from genai_service.retrieval.vector_store import VectorStore

DATABASE_CHECK_TIMEOUT_S = 2.0


async def database_answers(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_S), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # whatever the failure, the database is not ready
        logger.warning("readiness: database check failed: {}", type(exc).__name__)
        return False
    return True


async def redis_answers(redis: SharedRedis, signals: RedisSignals | None) -> bool:
    """Redis answers, and this process hears the other processes' signals through it."""
    return await redis.ping() and (signals is None or signals.connected)


async def readiness_checks(
    engine: AsyncEngine,
    models: ModelRegistry,
    vectors: VectorStore | None,
    redis: SharedRedis | None = None,
    signals: RedisSignals | None = None,
) -> dict[str, bool]:
    checks = {"database": await database_answers(engine)}
    if redis is not None:
        checks["redis"] = await redis_answers(redis, signals)
    if vectors is not None:
        checks["vector_store"] = await vectors.ready()
    checks.update({f"model:{name}": ready for name, ready in models.readiness().items()})
    return checks
