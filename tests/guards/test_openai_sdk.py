"""The official `openai` client against a live server: refused for a rate limit, it waits as
`Retry-After` says and succeeds on its retry; without retries it raises `RateLimitError`."""

from __future__ import annotations

import time

import httpx
import openai
from fastapi import FastAPI

from tests.guards.support import chat, set_limits
from tests.identity import Account, new_api_key

REQUESTS_PER_MINUTE = 60
"""A request comes back every second: a retry after `Retry-After` is short."""


async def test_the_sdk_waits_as_told_and_succeeds_on_retry(
    app: FastAPI, client: httpx.AsyncClient, server_url: str, alice: Account
) -> None:
    await set_limits(app, user_id=alice.id, requests_per_minute=REQUESTS_PER_MINUTE)
    key = (await new_api_key(client, alice))["secret"]
    no_retries = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key=key, max_retries=0)
    retrying = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key=key, max_retries=3)
    body = chat(max_tokens=5)
    # The whole minute's requests, as fast as they go, until a refusal has most of a second to
    # wait: the retrying client then certainly meets a refusal too.
    refusals: list[openai.RateLimitError] = []
    for _ in range(REQUESTS_PER_MINUTE + 400):
        try:
            await no_retries.chat.completions.create(**body)
        except openai.RateLimitError as refused:
            refusals.append(refused)
            if int(refused.response.headers["retry-after-ms"]) >= 500:
                break
    last = refusals[-1]
    assert (last.code, last.type) == ("rate_limit_exceeded", "requests")
    wait_ms = int(last.response.headers["retry-after-ms"])
    assert 500 <= wait_ms <= 1000
    started = time.monotonic()
    raw = await retrying.chat.completions.with_raw_response.create(**body)
    elapsed = time.monotonic() - started
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert raw.retries_taken >= 1
    assert raw.headers["x-ratelimit-limit-requests"] == str(REQUESTS_PER_MINUTE)
    # It waited as told (not its own backoff), and no longer than a few retries.
    assert wait_ms / 1000 - 0.1 < elapsed < 5.0
    await no_retries.close()
    await retrying.close()
