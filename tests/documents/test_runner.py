"""Jobs in the database: claims, leases and heartbeats between runners, on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from genai_service.documents.repository import DocumentRepository
from genai_service.documents.runner import IngestionRunner
from genai_service.documents.storage import DocumentStorage
from genai_service.gateway.gateway import ModelGateway
from genai_service.kit.db import create_engine, create_sessionmaker, utcnow
from genai_service.migrations import upgrade_database
from genai_service.models.document import Document, DocumentStatus
from genai_service.models.user import ANONYMOUS_USER_ID, User
from genai_service.retrieval.vector_store import QdrantVectorStore
from genai_service.settings import DocumentSettings, VectorSettings
from tests.conftest import make_fake_models, make_settings


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    await upgrade_database(engine)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def add_owner(sessionmaker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    async with sessionmaker() as session:
        user = User(id=uuid.uuid4(), email=f"{uuid.uuid4().hex}@example.com")
        session.add(user)
        await session.commit()
    return user.id


async def add_documents(
    sessionmaker: async_sessionmaker[AsyncSession],
    count: int,
    owner_id: uuid.UUID = ANONYMOUS_USER_ID,
    **values: object,
) -> list[uuid.UUID]:
    ids = []
    async with sessionmaker() as session:
        for n in range(count):
            fields: dict[str, object] = {
                "status": DocumentStatus.QUEUED,
                "progress": 0.0,
                "attempts": 0,
                **values,
            }
            document = Document(
                id=uuid.uuid4(),
                owner_id=owner_id,
                filename=f"{n}.txt",
                content_type="text/plain",
                size=1,
                sha256=uuid.uuid4().hex * 2,
                **fields,
            )
            session.add(document)
            ids.append(document.id)
            await session.flush()
        await session.commit()
    return ids


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession], runner: str, *, after: float = 0
) -> Document | None:
    now = utcnow() + timedelta(seconds=after)
    async with sessionmaker() as session, session.begin():
        return await DocumentRepository(session).claim_next(
            runner, now=now, lease_until=now + timedelta(seconds=10)
        )


async def test_each_job_is_claimed_by_one_runner(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    [first] = await add_documents(sessionmaker, 1)
    [second] = await add_documents(sessionmaker, 1, await add_owner(sessionmaker))
    claimed_a = await claim(sessionmaker, "runner-a")
    claimed_b = await claim(sessionmaker, "runner-b")
    assert claimed_a is not None
    assert claimed_b is not None
    assert {claimed_a.id, claimed_b.id} == {first, second}
    assert claimed_a.status is DocumentStatus.PARSING
    assert claimed_a.lease_owner == "runner-a"
    assert claimed_a.attempts == 1
    assert await claim(sessionmaker, "runner-c") is None


async def test_a_job_whose_lease_ran_out_is_claimed_again(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    [document_id] = await add_documents(sessionmaker, 1)
    assert await claim(sessionmaker, "dead-runner") is not None
    assert await claim(sessionmaker, "runner-b", after=5) is None  # still leased
    taken = await claim(sessionmaker, "runner-b", after=11)
    assert taken is not None
    assert taken.id == document_id
    assert taken.attempts == 2
    lease = utcnow() + timedelta(seconds=30)
    async with sessionmaker() as session, session.begin():
        documents = DocumentRepository(session)
        assert not await documents.heartbeat(
            document_id,
            "dead-runner",
            status=DocumentStatus.EMBEDDING,
            progress=0.5,
            lease_until=lease,
        )
        assert await documents.heartbeat(
            document_id,
            "runner-b",
            status=DocumentStatus.EMBEDDING,
            progress=0.5,
            lease_until=lease,
        )


async def test_a_cancelled_job_stops_its_runners_heartbeat(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    [document_id] = await add_documents(sessionmaker, 1)
    assert await claim(sessionmaker, "runner-a") is not None
    async with sessionmaker() as session, session.begin():
        assert await DocumentRepository(session).cancel(document_id)
    async with sessionmaker() as session, session.begin():
        documents = DocumentRepository(session)
        assert not await documents.heartbeat(
            document_id,
            "runner-a",
            status=DocumentStatus.EMBEDDING,
            progress=0.5,
            lease_until=utcnow() + timedelta(seconds=30),
        )
        assert not await documents.finish(
            document_id, "runner-a", status=DocumentStatus.INDEXED, now=utcnow(), chunk_count=1
        )
        document = await documents.get(document_id)
    assert document is not None
    assert document.status is DocumentStatus.CANCELLED
    assert await claim(sessionmaker, "runner-b", after=60) is None


async def test_a_job_that_keeps_killing_its_runner_fails_after_max_attempts(
    tmp_path: Path, database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    [document_id] = await add_documents(
        sessionmaker,
        1,
        status=DocumentStatus.EMBEDDING,
        attempts=3,
        lease_owner="dead",
        lease_expires_at=long_ago,
    )
    settings = make_settings(
        tmp_path,
        database_url,
        documents=DocumentSettings(max_attempts=3),
        vectors=VectorSettings(local_path=tmp_path / "vectors"),
    )
    models = make_fake_models()
    await models.start()
    store = QdrantVectorStore.from_settings(settings)
    runner = IngestionRunner(
        sessionmaker=sessionmaker,
        models=models,
        gateway=ModelGateway(models),
        store=store,
        storage=DocumentStorage(tmp_path / "documents"),
        settings=settings.documents,
    )
    try:
        assert await runner.run_until_idle() == 0
    finally:
        await store.close()
        await models.close()
    async with sessionmaker() as session:
        failed = await DocumentRepository(session).get(document_id)
    assert failed is not None
    assert failed.status is DocumentStatus.FAILED
    assert failed.error is not None
    assert "interrupted 3 times" in failed.error


async def test_an_owner_with_a_running_job_waits_while_others_are_served(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    busy_first, busy_second = await add_documents(sessionmaker, 2)
    [other] = await add_documents(sessionmaker, 1, await add_owner(sessionmaker))
    taken = await claim(sessionmaker, "runner-a")
    assert taken is not None
    assert taken.id == busy_first
    # The owner's second document is older than the other owner's, yet waits its turn.
    served = await claim(sessionmaker, "runner-b")
    assert served is not None
    assert served.id == other
    assert await claim(sessionmaker, "runner-c") is None
    async with sessionmaker() as session, session.begin():
        assert await DocumentRepository(session).finish(
            busy_first, "runner-a", status=DocumentStatus.INDEXED, now=utcnow(), chunk_count=1
        )
    then = await claim(sessionmaker, "runner-c")
    assert then is not None
    assert then.id == busy_second
    # A runner that died frees its owner once its lease has run out.
    await add_documents(sessionmaker, 1)
    assert await claim(sessionmaker, "runner-d") is None
    later = await claim(sessionmaker, "runner-d", after=11)
    assert later is not None
    assert later.id == busy_second
    assert later.attempts == 2


async def test_concurrent_claims_never_share_a_job(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = [
        document_id
        for _ in range(3)
        for document_id in await add_documents(sessionmaker, 1, await add_owner(sessionmaker))
    ]
    claimed = await asyncio.gather(*(claim(sessionmaker, f"runner-{n}") for n in range(8)))
    taken = [document.id for document in claimed if document is not None]
    assert sorted(taken) == sorted(ids)  # every job once, none twice
    owners = {document.lease_owner for document in claimed if document is not None}
    assert len(owners) == 3
