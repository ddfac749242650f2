"""Revision 0007 creates the table of limits as the ORM describes it, and its
downgrade takes it away again, on both backends."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from genai_service.kit.db import create_engine
from genai_service.migrations import alembic_config, upgrade_database
from genai_service.models import Base


def limits_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
    )
    return [diff for diff in compare_metadata(context, Base.metadata) if "limits" in repr(diff)]


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def foreign_keys(connection: Connection) -> dict[str, str | None]:
    """Referred table -> what deleting its row does."""
    keys = inspect(connection).get_foreign_keys("limits")
    return {key["referred_table"]: key["options"].get("ondelete") for key in keys}


async def test_upgrade_matches_the_models_and_downgrade_drops_the_table(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(limits_differences) == []
            keys = await connection.run_sync(foreign_keys)
        assert keys == {"users": "CASCADE", "api_keys": "CASCADE"}
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0006"))
        async with engine.connect() as connection:
            assert "limits" not in await connection.run_sync(table_names)
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert "limits" in await connection.run_sync(table_names)
    finally:
        await engine.dispose()
