"""`genai-service ask`: the command line against a running server, over real HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import httpx
from fastapi import FastAPI

from genai_service.runtime import runtime_of
from tests.conversations.support import messages_of, new_conversation
from tests.conversations.test_documents import ListedSources, source
from tests.identity import Account


async def run_cli(*args: str) -> tuple[int, str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "GENAI_TOKEN"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "genai_service",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_ask_streams_the_reply_and_lists_the_cited_sources(
    app: FastAPI, client: httpx.AsyncClient, server_url: str, alice: Account
) -> None:
    handbook = source("Remote work needs a manager's approval.", 0.83, page=2)
    runtime_of(app).retriever = ListedSources([handbook])
    conversation = await new_conversation(client, alice, title="HR")

    code, out, err = await run_cli(
        "ask",
        "Can I work from home?",
        "--url",
        server_url,
        "--token",
        alice.access_token,
        "--conversation",
        conversation["id"],
        "--documents",
        "all",
    )

    assert code == 0, err
    reply = (await messages_of(client, alice, conversation["id"]))[-1]
    assert reply["role"] == "assistant"
    assert reply["citations"][0]["quote"] == handbook.text
    reply_part, _, sources_part = out.partition("\nSources:\n")
    assert reply_part.strip() == reply["content"].strip()
    assert sources_part.strip() == (
        "[1] handbook.pdf, page 2, characters 100-139 (score 0.83): "
        "Remote work needs a manager's approval."
    )


async def test_ask_without_a_conversation_starts_one(
    client: httpx.AsyncClient, server_url: str, alice: Account
) -> None:
    code, out, err = await run_cli(
        "ask", "Hello?", "--url", server_url, "--token", alice.access_token
    )

    assert code == 0, err
    listed = await client.get("/api/conversations", headers=alice.headers)
    [conversation] = listed.json()["items"]
    reply = (await messages_of(client, alice, conversation["id"]))[-1]
    assert out.strip() == reply["content"].strip()
    assert "Sources:" not in out


async def test_ask_reports_the_servers_refusal(server_url: str, alice: Account) -> None:
    missing = str(uuid.uuid4())
    code, out, err = await run_cli(
        "ask",
        "Hello?",
        "--url",
        server_url,
        "--token",
        alice.access_token,
        "--conversation",
        missing,
    )

    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert err == "error: No such conversation.\n"


async def test_ask_with_a_bad_token_is_refused(server_url: str) -> None:
    code, _, err = await run_cli("ask", "Hello?", "--url", server_url, "--token", "not-a-token")

    assert code == 1
    assert err.startswith("error: ")
