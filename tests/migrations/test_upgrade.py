from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

from genai_service.kit.db import create_engine
from genai_service.migrations import alembic_config, upgrade_database


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(url: str) -> str:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return str(
                (
                    await connection.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar_one()
            )
    finally:
        await engine.dispose()


async def test_parallel_upgrades_do_not_race(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade_database(engine) for engine in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    assert await current_revision(database_url) == head_revision()


async def test_cli_db_upgrade(database_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GENAI_DATABASE_URL": database_url,
        "GENAI_DATA_DIR": str(tmp_path / "data"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "genai_service",
        "db",
        "upgrade",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert "up to date" in stdout.decode()
    assert await current_revision(database_url) == head_revision()


async def test_the_app_migrates_at_startup(app: object, database_url: str) -> None:
    assert await current_revision(database_url) == head_revision()
