"""Revision 0002 (identity) creates exactly what the ORM models describe, on both backends."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from genai_service.kit.db import create_engine
from genai_service.migrations import alembic_config, upgrade_database
from genai_service.models import ANONYMOUS_EMAIL, Base

IDENTITY_TABLES = {"users", "refresh_tokens", "api_keys"}


def schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
    )
    return [
        diff
        for diff in compare_metadata(context, Base.metadata)
        if _table_of(diff) in IDENTITY_TABLES
    ]


def _table_of(diff: Any) -> str | None:
    """The table a difference is about (diffs are tuples, or lists of tuples for columns)."""
    entry = diff[0] if isinstance(diff, list) else diff
    for part in entry[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else part
        table = getattr(getattr(part, "table", None), "name", None)
        if table:
            return str(table)
        if name in IDENTITY_TABLES:
            return str(name)
    return None


def downgrade_to_baseline(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0001")


async def test_the_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(schema_differences) == []
            emails = (await connection.execute(text("SELECT email FROM users"))).scalars().all()
        assert emails == [ANONYMOUS_EMAIL]
    finally:
        await engine.dispose()


async def test_downgrade_and_upgrade_again(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to_baseline)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert not tables & IDENTITY_TABLES
        await upgrade_database(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert tables >= IDENTITY_TABLES
    finally:
        await engine.dispose()
