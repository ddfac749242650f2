"""A lone UTF-16 surrogate in any JSON string is refused at the edge, naming the field."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from genai_service.kit.lone_surrogates import find_lone_surrogate, reject_lone_surrogates
from tests.conftest import FAKE_CHAT_MODEL
from tests.identity import Account

LONE = "\ud800"


def as_json(document: Any) -> bytes:
    """JSON as a client would send it: the surrogate spelled as an escape."""
    return json.dumps(document).encode("ascii")


async def post_json(
    client: httpx.AsyncClient, path: str, document: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        path,
        content=as_json(document),
        headers={"content-type": "application/json", **(headers or {})},
    )


def chat(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": FAKE_CHAT_MODEL, "messages": messages, **extra}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat([{"role": "user", "content": f"hi {LONE}"}]), "messages.0.content"),
        (
            chat([{"role": "user", "content": [{"type": "text", "text": LONE}]}]),
            "messages.0.content.0.text",
        ),
        (chat([{"role": "user", "content": f"x{LONE}"}], stream=True), "messages.0.content"),
        (chat([{"role": "user", "content": "hi"}], stop=[LONE]), "stop.0"),
        (chat([{"role": "user", "content": "hi"}], user="\udfff"), "user"),
    ],
)
async def test_openai_chat_strings_are_400_naming_the_param(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    response = await post_json(client, "/v1/chat/completions", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert "surrogate" in error["message"]


async def test_product_api_bodies_are_422_problems(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await post_json(
        client, "/api/conversations", {"title": f"a {LONE} b"}, alice.headers
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert (error["field"], error["type"]) == ("title", "string_unicode")


async def test_a_raw_utf8_encoded_surrogate_is_refused_too(client: httpx.AsyncClient) -> None:
    body = b'{"model": "fake-chat", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}'
    response = await client.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages.0.content"


async def test_a_surrogate_pair_is_a_character_and_passes(client: httpx.AsyncClient) -> None:
    body = chat([{"role": "user", "content": "smile \U0001f600"}], max_tokens=20)
    response = await post_json(client, "/v1/chat/completions", body)  # sent as \ud83d\ude00
    assert response.status_code == 200
    assert "\U0001f600" in response.json()["choices"][0]["message"]["content"]


def test_object_keys_and_nesting_are_searched() -> None:
    assert find_lone_surrogate({"a": [1, {"b": ["ok", "\udc00"]}]}) == ("a", 1, "b", 1)
    assert find_lone_surrogate({"ok": {f"k{LONE}": 1}}) == ("ok", "k?")
    assert find_lone_surrogate({"a": ["fine", 1.5, None, True]}) is None
    deep: Any = LONE
    for _ in range(10_000):
        deep = [deep]
    assert find_lone_surrogate(deep) == (0,) * 10_000


class Probe(BaseModel):
    note: str


probe_router = APIRouter()


@probe_router.post("/probe/notes")
async def add_note(probe: Probe) -> Probe:
    return probe


async def test_a_route_added_later_is_covered_without_asking(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.include_router(probe_router)
    response = await post_json(client, "/probe/notes", {"note": LONE})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "note"
    assert (await post_json(client, "/probe/notes", {"note": "fine"})).status_code == 200


def test_the_check_is_app_wide(app: FastAPI) -> None:
    """FastAPI hands the app's own dependencies to every route, present and future."""
    assert reject_lone_surrogates in [
        dependency.dependency for dependency in app.router.dependencies
    ]
