"""Revision 0004 (documents) creates exactly what the ORM model describes, on both backends."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from genai_service.kit.db import create_engine
from genai_service.migrations import alembic_config, upgrade_database
from genai_service.models import Base


def document_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
    )
    return [diff for diff in compare_metadata(context, Base.metadata) if "documents" in repr(diff)]


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_the_document_model_matches_the_migrated_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert "documents" in await connection.run_sync(table_names)
            assert await connection.run_sync(document_differences) == []
    finally:
        await engine.dispose()


async def test_downgrade_removes_documents_and_upgrade_restores_them(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0003"))
        async with engine.connect() as connection:
            assert "documents" not in await connection.run_sync(table_names)
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert "documents" in await connection.run_sync(table_names)
    finally:
        await engine.dispose()
