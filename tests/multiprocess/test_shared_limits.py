"""Rate limits hold across two `genai-service serve` processes sharing one Redis: a caller gets
its requests per minute and its calls in flight once in total, not once per process; and a
change of limits made through one process (or the command line) is enforced by the other on
its very next request, though it had the old limits cached."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import httpx

from tests.conversations.support import SLOW_CHAT_MODEL
from tests.identity import Account
from tests.multiprocess.conftest import Deployment
from tests.multiprocess.harness import fetch_value, register

CALLS = 12


def chat(model: str = "fake-chat", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


async def admin_of(deployment: Deployment) -> Account:
    admin = await register(deployment.a.base_url, "admin")
    await fetch_value(
        deployment.database_url, "UPDATE users SET role = 'admin' WHERE id = $1::uuid", admin.id
    )
    return admin


async def put_limits(base_url: str, admin: Account, user: Account, **limits: int | None) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.put(
            f"/api/users/{user.id}/limits", json=limits, headers=admin.headers
        )
    assert response.status_code == 200, response.text


async def test_requests_per_minute_spread_over_two_processes_are_admitted_once(
    deployment: Deployment,
) -> None:
    a, b = deployment.a.base_url, deployment.b.base_url
    admin, alice = await admin_of(deployment), await register(a, "alice")
    await put_limits(a, admin, alice, requests_per_minute=4)
    async with (
        httpx.AsyncClient(base_url=a, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b, timeout=30) as on_b,
    ):
        responses = await asyncio.gather(
            *(
                (on_a if n % 2 else on_b).post(
                    "/v1/chat/completions", json=chat(), headers=alice.headers
                )
                for n in range(CALLS)
            )
        )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 4 + [429] * (CALLS - 4)
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "rate_limit_exceeded"
            assert int(response.headers["Retry-After"]) >= 1


async def test_two_slots_hold_across_streams_on_both_processes(deployment: Deployment) -> None:
    a, b = deployment.a.base_url, deployment.b.base_url
    admin, bob = await admin_of(deployment), await register(a, "bob")
    await put_limits(a, admin, bob, max_concurrent=2)
    body = chat(SLOW_CHAT_MODEL, stream=True)
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in (a, b) * 3]
    try:
        requests = [
            http.build_request("POST", "/v1/chat/completions", json=body, headers=bob.headers)
            for http in clients
        ]
        responses = await asyncio.gather(
            *(
                http.send(request, stream=True)
                for http, request in zip(clients, requests, strict=True)
            )
        )
        admitted = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code == 429]
        assert (len(admitted), len(refused)) == (2, 4)
        for response in refused:
            await response.aread()
            assert "max_concurrent" in response.json()["error"]["message"]
        # While both streams run, neither process admits a third.
        for url in (a, b):
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                third = await http.post("/v1/chat/completions", json=body, headers=bob.headers)
            assert third.status_code == 429
        for response in admitted:  # the clients go away mid-stream: the slots come back
            await response.aclose()
        for url in (b, a):
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                again = await _until_admitted(http, chat(), bob)
            assert again.status_code == 200
    finally:
        for http in clients:
            await http.aclose()


async def _until_admitted(
    http: httpx.AsyncClient, body: dict[str, Any], account: Account
) -> httpx.Response:
    """The slots of streams whose clients left come back once their calls end (a moment)."""
    for _ in range(200):
        response = await http.post("/v1/chat/completions", json=body, headers=account.headers)
        if response.status_code != 429:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError("no slot came back")


async def test_limits_changed_on_a_or_the_command_line_apply_on_b_at_the_next_request(
    deployment: Deployment,
) -> None:
    a, b = deployment.a.base_url, deployment.b.base_url
    admin, carol = await admin_of(deployment), await register(a, "carol")
    await put_limits(a, admin, carol, requests_per_minute=100)
    async with httpx.AsyncClient(base_url=b, timeout=30) as on_b:
        for _ in range(2):  # B reads carol's limits, then answers from its cache
            answer = await on_b.post("/v1/chat/completions", json=chat(), headers=carol.headers)
            assert answer.status_code == 200
            assert answer.headers["x-ratelimit-limit-requests"] == "100"
        await put_limits(a, admin, carol, requests_per_minute=0)
        refused = await on_b.post("/v1/chat/completions", json=chat(), headers=carol.headers)
        assert refused.status_code == 429
        assert "requests_per_minute is 0" in refused.json()["error"]["message"]

        await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "genai_service",
                "limits",
                "set",
                "--email",
                carol.email,
                "--requests-per-minute",
                "50",
            ],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_")},
                **deployment.env,
            },
            check=True,
            capture_output=True,
        )
        raised = await on_b.post("/v1/chat/completions", json=chat(), headers=carol.headers)
        assert raised.status_code == 200, raised.text
        assert raised.headers["x-ratelimit-limit-requests"] == "50"
