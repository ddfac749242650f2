"""Revision 0003 (conversations) creates what the ORM models describe, on both backends."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from genai_service.kit.db import create_engine
from genai_service.migrations import alembic_config, upgrade_database
from genai_service.models import Base

CONVERSATION_TABLES = {"conversations", "messages", "generations"}


def _mentions_our_tables(diff: Any) -> bool:
    return any(name in repr(diff) for name in CONVERSATION_TABLES)


def schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
    )
    return [diff for diff in compare_metadata(context, Base.metadata) if _mentions_our_tables(diff)]


def partial_indexes(connection: Connection) -> dict[str, Any]:
    return {
        index["name"]: index
        for index in inspect(connection).get_indexes("generations")
        if index["name"] == "uq_generations_running_conversation"
    }


async def test_the_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(schema_differences) == []
            indexes = await connection.run_sync(partial_indexes)
        assert indexes["uq_generations_running_conversation"]["unique"]
    finally:
        await engine.dispose()


async def test_downgrade_to_identity_and_upgrade_again(database_url: str) -> None:
    engine = create_engine(database_url)

    def tables(sync: Connection) -> set[str]:
        return set(inspect(sync).get_table_names())

    try:
        await upgrade_database(engine)
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0002"))
        async with engine.connect() as connection:
            assert not await connection.run_sync(tables) & CONVERSATION_TABLES
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(tables) >= CONVERSATION_TABLES
    finally:
        await engine.dispose()
