from __future__ import annotations

import asyncio

from loguru import logger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genai_service.inference.registry import ModelRegistry
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


async def readiness_checks(
    engine: AsyncEngine, models: ModelRegistry, vectors: VectorStore | None
) -> dict[str, bool]:
    checks = {"database": await database_answers(engine)}
    if vectors is not None:
        checks["vector_store"] = await vectors.ready()
    checks.update({f"model:{name}": ready for name, ready in models.readiness().items()})
    return checks
