from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from genai_service.kit.db import create_engine
from genai_service.migrations import alembic_config


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


async def _cli_upgrade(database_url: str, data_dir: Path) -> tuple[int | None, str]:
    env = {**os.environ, "GENAI_DATABASE_URL": database_url, "GENAI_DATA_DIR": str(data_dir)}
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
    return process.returncode, stdout.decode() + stderr.decode()


async def test_parallel_upgrades_from_several_processes_do_not_race(
    database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("the migration advisory lock is a PostgreSQL feature; SQLite runs one server")
    results = await asyncio.gather(*(_cli_upgrade(database_url, tmp_path / "d") for _ in range(3)))
    for returncode, output in results:
        assert returncode == 0, output
    assert await current_revision(database_url) == head_revision()


async def test_cli_db_upgrade(database_url: str, tmp_path: Path) -> None:
    returncode, output = await _cli_upgrade(database_url, tmp_path / "data")
    assert returncode == 0, output
    assert "up to date" in output
    assert await current_revision(database_url) == head_revision()


async def test_the_app_migrates_at_startup(app: object, database_url: str) -> None:
    assert await current_revision(database_url) == head_revision()
