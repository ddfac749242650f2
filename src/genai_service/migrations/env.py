from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from genai_service.models import Base

# An arbitrary constant: every genai-service process migrating the same PostgreSQL database
# takes this advisory lock, so parallel workers run the migrations one after another.
MIGRATION_LOCK_KEY = 7_305_918_246


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `genai-service db upgrade`")
run_migrations(connection)
