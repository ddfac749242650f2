"""Revision 0006 creates the table of stored responses as the ORM describes it, and its
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


def responses_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
    )
    return [diff for diff in compare_metadata(context, Base.metadata) if "responses" in repr(diff)]


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def owner_foreign_key(connection: Connection) -> dict[str, Any]:
    [key] = inspect(connection).get_foreign_keys("responses")
    return dict(key)


async def test_upgrade_matches_the_models_and_downgrade_drops_the_table(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(responses_differences) == []
            key = await connection.run_sync(owner_foreign_key)
        assert (key["referred_table"], key["options"].get("ondelete")) == ("users", "CASCADE")
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0005"))
        async with engine.connect() as connection:
            assert "responses" not in await connection.run_sync(table_names)
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert "responses" in await connection.run_sync(table_names)
    finally:
        await engine.dispose()
