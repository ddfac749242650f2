from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from genai_service.kit.errors import Conflict
from genai_service.runtime import SessionDep, runtime_of

router = APIRouter(prefix="/probe/notes")


@router.post("/{body}", status_code=201)
async def add_note(body: str, session: SessionDep) -> dict[str, str]:
    await session.execute(text("INSERT INTO probe_notes (body) VALUES (:body)"), {"body": body})
    if body.startswith("fail"):
        raise Conflict("refused after writing")
    return {"body": body}


@router.post("/twice/{body}", status_code=201)
async def add_two_notes(body: str, session: SessionDep) -> dict[str, int]:
    await session.execute(text("INSERT INTO probe_notes (body) VALUES (:body)"), {"body": body})
    await session.execute(text("INSERT INTO probe_notes (body) VALUES (:body)"), {"body": body})
    return {"count": 2}


@pytest.fixture
async def notes_app(app: FastAPI) -> FastAPI:
    async with runtime_of(app).engine.begin() as connection:
        await connection.execute(text("CREATE TABLE probe_notes (body VARCHAR(50) UNIQUE)"))
    app.include_router(router)
    return app


async def stored_notes(app: FastAPI) -> list[str]:
    async with runtime_of(app).engine.connect() as connection:
        rows = await connection.execute(text("SELECT body FROM probe_notes ORDER BY body"))
        return [row[0] for row in rows]


async def test_success_commits_once(notes_app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post("/probe/notes/hello")
    assert response.status_code == 201
    assert await stored_notes(notes_app) == ["hello"]


async def test_a_domain_error_rolls_back(notes_app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post("/probe/notes/fail-me")
    assert response.status_code == 409
    assert await stored_notes(notes_app) == []


async def test_a_failed_statement_rolls_back_the_whole_request(
    notes_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post("/probe/notes/twice/dup")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert await stored_notes(notes_app) == []


async def test_datetimes_come_back_timezone_aware(app: FastAPI) -> None:
    from datetime import UTC, datetime

    from genai_service.kit.db import UTCDateTime

    column = UTCDateTime()
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    dialect = runtime_of(app).engine.dialect
    stored = column.process_bind_param(stamp, dialect)
    assert stored is not None
    naive = stored.replace(tzinfo=None)
    assert column.process_result_value(naive, dialect) == stamp
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(naive, dialect)
