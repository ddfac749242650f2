"""Revision 0008 creates the tables of budgets and usage as the ORM describes them, and its
downgrade takes them away again, on both backends."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from genai_service.kit.db import create_engine
from genai_service.migrations import alembic_config, upgrade_database
from genai_service.models import Base

TABLES = {"budget_counters", "budget_reservations", "usage_records", "usage_daily"}


def budget_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
    )
    return [
        diff
        for diff in compare_metadata(context, Base.metadata)
        if any(table in repr(diff) for table in TABLES)
    ]


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def index_columns(connection: Connection, table: str) -> set[tuple[str, ...]]:
    return {tuple(index["column_names"]) for index in inspect(connection).get_indexes(table)}


async def test_upgrade_matches_the_models_and_downgrade_drops_the_tables(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(budget_differences) == []
            assert await connection.run_sync(table_names) >= TABLES
            # What keeps the usage reports and the sweep of expired reservations off full scans.
            daily = await connection.run_sync(index_columns, "usage_daily")
            reservations = await connection.run_sync(index_columns, "budget_reservations")
        assert ("day",) in daily
        assert {("expires_at",), ("holder",)} <= reservations
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0007"))
        async with engine.connect() as connection:
            assert not TABLES & await connection.run_sync(table_names)
            assert "limits" in await connection.run_sync(table_names)
        await upgrade_database(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(table_names) >= TABLES
    finally:
        await engine.dispose()
