"""Revision 0005 adds the generations' heartbeat and takes it away again, on both backends."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect, text

from genai_service.kit.db import create_engine
from genai_service.migrations import alembic_config, upgrade_database


def generation_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("generations")}


def running_index_sql(connection: Connection) -> str:
    """How the database itself describes the one-running-generation index."""
    if connection.dialect.name == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE name = :name"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    found = connection.execute(text(query), {"name": "uq_generations_running_conversation"})
    return str(found.scalar_one())


async def test_downgrade_drops_the_heartbeat_and_keeps_the_running_index(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert "heartbeat_at" in await connection.run_sync(generation_columns)
            before = await connection.run_sync(running_index_sql)
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0004"))
        async with engine.connect() as connection:
            assert "heartbeat_at" not in await connection.run_sync(generation_columns)
            after = await connection.run_sync(running_index_sql)
        assert "status" in after.lower()
        assert "unique" in after.lower()
        assert after == before
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert "heartbeat_at" in await connection.run_sync(generation_columns)
    finally:
        await engine.dispose()
