"""Benchmark: `GET /api/usage/me`'s work (`UsageService.me`) and an admin's month report, with a
million calls in the usage ledger.

The ledger and its daily rollup are written straight into a fresh database (SQLite in a temp
dir, or `GENAI_DATABASE_URL`): `BENCH_USAGE_ROWS` calls (default 1,000,000) of 1,000 users over
the last 30 days and three models, with the rollup rows the settlement path would have written.
Then each report is timed `BENCH_USAGE_QUERIES` times, sequentially.

Run: `python -m bench.usage`.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bench.http_load import percentile
from genai_service.composition import open_runtime
from genai_service.gateway.caller import Caller
from genai_service.guards.periods import Periods
from genai_service.guards.usage_repository import UsageFilter
from genai_service.guards.usage_service import UsageService
from genai_service.kit.db import utcnow
from genai_service.kit.pagination import PageParams
from genai_service.models.usage import NO_KEY, DailyUsage, UsageRecord, UsageStatus
from genai_service.settings import Settings

ROWS = int(os.environ.get("BENCH_USAGE_ROWS", "1000000"))
QUERIES = int(os.environ.get("BENCH_USAGE_QUERIES", "200"))
USERS = 1000
MODELS = ("smollm2-135m-instruct", "all-minilm-l6-v2", "remote-gpt")
DAYS = 30
BATCH = 20_000


async def fill(settings: Settings) -> list[uuid.UUID]:
    users = [uuid.uuid4() for _ in range(USERS)]
    now = utcnow()
    rollup: dict[tuple[uuid.UUID, object, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    rng = random.Random(7)
    async with open_runtime(settings, mode="tool") as runtime:
        for start in range(0, ROWS, BATCH):
            rows = []
            for _ in range(min(BATCH, ROWS - start)):
                user, model = rng.choice(users), rng.choice(MODELS)
                started = now - timedelta(seconds=rng.randrange(DAYS * 86400))
                prompt, completion = rng.randrange(10, 500), rng.randrange(0, 500)
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "user_id": user,
                        "api_key_id": None,
                        "model": model,
                        "purpose": "chat",
                        "status": UsageStatus.COMPLETED,
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "duration_ms": 100,
                        "started_at": started,
                        "day": started.date(),
                    }
                )
                totals = rollup[(user, started.date(), model)]
                totals[0] += 1
                totals[1] += prompt
                totals[2] += completion
            async with runtime.sessionmaker.begin() as session:
                await session.execute(insert(UsageRecord), rows)
        daily = [
            {
                "user_id": user,
                "day": day,
                "api_key_id": NO_KEY,
                "model": model,
                "calls": calls,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
            }
            for (user, day, model), (calls, prompt, completion) in rollup.items()
        ]
        async with runtime.sessionmaker.begin() as session:
            for start in range(0, len(daily), BATCH):
                await session.execute(insert(DailyUsage), daily[start : start + BATCH])
            ledger = await session.scalar(select(func.count()).select_from(UsageRecord))
        print(f"ledger: {ledger:,} calls; rollup: {len(daily):,} rows")
    return users


async def measure(settings: Settings, users: list[uuid.UUID]) -> None:
    async with open_runtime(settings, mode="tool") as runtime:
        me: list[float] = []
        report: list[float] = []
        today = Periods.at(utcnow())
        for index in range(QUERIES):
            user = users[index % len(users)]
            async with runtime.sessionmaker() as session:
                started = time.perf_counter()
                await UsageService(session, settings.limits).me(Caller(user))
                me.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await UsageService(session, settings.limits).report(
                    UsageFilter(since=today.month, until=today.day, user_id=user),
                    ["day", "model"],
                    PageParams(offset=0, limit=100),
                )
                report.append((time.perf_counter() - started) * 1000)
    for name, times in (("usage/me", me), ("user's month by day and model", report)):
        print(
            f"{name}: p50 {percentile(times, 50):.2f} ms, p99 {percentile(times, 99):.2f} ms "
            f"({QUERIES} sequential)"
        )


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory) / "data"
        settings = Settings(
            _env_file=None,
            data_dir=data_dir,
            database_url=os.environ.get("GENAI_DATABASE_URL"),
        )
        settings.prepare_data_dir()
        started = time.perf_counter()
        users = await fill(settings)
        print(
            f"filled in {time.perf_counter() - started:.0f} s ({settings.sqlalchemy_url[:18]}...)"
        )
        await measure(settings, users)


if __name__ == "__main__":
    asyncio.run(main())
