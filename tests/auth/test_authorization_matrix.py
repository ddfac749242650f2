"""Every route, every kind of caller: the expected status of each, in one explicit table.

A route missing from `MATRIX` fails the test (so does an entry for a route that is gone): adding
a route means deciding, here, who may call it.

Callers: `anonymous_off` / `anonymous_on` send no credentials (anonymous mode off / on);
`user` owns the resources in the paths (its API key, its account, its conversation); `other_user`
is another ordinary user; `admin` is an admin who owns none of them.

A WebSocket route's outcome is `101` when the socket stays open for frames, otherwise the code
the server closed it with.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from httpx_ws import WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.routing import Mount, Route, WebSocketRoute

from genai_service.app import create_app
from genai_service.models.user import Role
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.conftest import (
    FAKE_CHAT_MODEL,
    FAKE_EMBEDDING_MODEL,
    client_for,
    make_fake_models,
    second_process,
)
from tests.documents.samples import wait_for_final
from tests.identity import (
    PASSWORD,
    Account,
    login,
    new_account,
    new_api_key,
    settings_with_auth,
    unique_email,
)

CALLERS = ("anonymous_off", "anonymous_on", "user", "other_user", "admin")
Expected = dict[str, int]


def everyone(status: int) -> Expected:
    """Public: the same answer whoever asks."""
    return dict.fromkeys(CALLERS, status)


def any_caller(status: int) -> Expected:
    """`CurrentUser`: the anonymous user counts when anonymous mode is on."""
    return {**dict.fromkeys(CALLERS, status), "anonymous_off": 401}


def signed_in(status: int, *, not_owner: int | None = None) -> Expected:
    """`SignedInUser`: a real account; `not_owner` for callers who do not own the resource."""
    others = status if not_owner is None else not_owner
    return {
        "anonymous_off": 401,
        "anonymous_on": 401,
        "user": status,
        "other_user": others,
        "admin": others,
    }


def owned(status: int) -> Expected:
    """`CurrentUser` on a resource of `user`: anyone else (the anonymous user too) gets 404."""
    return {
        "anonymous_off": 401,
        "anonymous_on": 404,
        "user": status,
        "other_user": 404,
        "admin": 404,
    }


def key_owner_or_admin(status: int) -> Expected:
    """`SignedInUser` on a key of `user`: an admin may too, another user gets 404."""
    return {**signed_in(status, not_owner=404), "admin": status}


def admins(status: int) -> Expected:
    """`AdminUser`."""
    return {
        "anonymous_off": 401,
        "anonymous_on": 401,
        "user": 403,
        "other_user": 403,
        "admin": status,
    }


MATRIX: dict[tuple[str, str], Expected] = {
    ("GET", "/"): everyone(200),
    ("GET", "/healthz"): everyone(200),
    ("GET", "/readyz"): everyone(200),
    ("GET", "/metrics"): everyone(200),
    ("GET", "/openapi.json"): everyone(200),
    ("GET", "/docs"): everyone(200),
    ("GET", "/docs/oauth2-redirect"): everyone(200),
    ("GET", "/redoc"): everyone(200),
    ("GET", "/chat"): any_caller(200),
    ("POST", "/v1/chat/completions"): any_caller(200),
    ("POST", "/v1/embeddings"): any_caller(200),
    ("GET", "/v1/models"): any_caller(200),
    ("GET", "/v1/models/{model_id}"): any_caller(200),
    ("POST", "/v1/completions"): any_caller(200),
    ("POST", "/v1/responses"): any_caller(200),
    ("GET", "/v1/responses/{response_id}"): owned(200),
    ("DELETE", "/v1/responses/{response_id}"): owned(200),
    ("POST", "/api/auth/register"): everyone(201),
    ("POST", "/api/auth/token"): everyone(200),
    ("POST", "/api/auth/refresh"): everyone(200),
    ("POST", "/api/auth/logout"): everyone(204),
    ("GET", "/api/users/me"): any_caller(200),
    ("PATCH", "/api/users/me"): signed_in(200),
    ("GET", "/api/users"): admins(200),
    ("PATCH", "/api/users/{user_id}"): admins(200),
    ("POST", "/api/keys"): signed_in(201),
    ("GET", "/api/keys"): signed_in(200),
    ("DELETE", "/api/keys/{key_id}"): signed_in(204, not_owner=404),
    # The user's own limits: an ordinary user cannot raise them (403), even its own.
    ("GET", "/api/users/{user_id}/limits"): admins(200),
    ("PUT", "/api/users/{user_id}/limits"): admins(200),
    ("DELETE", "/api/users/{user_id}/limits"): admins(204),
    ("GET", "/api/keys/{key_id}/limits"): key_owner_or_admin(200),
    ("PUT", "/api/keys/{key_id}/limits"): key_owner_or_admin(200),
    ("DELETE", "/api/keys/{key_id}/limits"): key_owner_or_admin(204),
    ("GET", "/api/usage/me"): any_caller(200),
    # Reports name other users' usage: admins only (here, asked for `other_user`'s).
    ("GET", "/api/usage"): admins(200),
    ("POST", "/api/conversations"): any_caller(201),
    ("GET", "/api/conversations"): any_caller(200),
    ("GET", "/api/conversations/{conversation_id}"): owned(200),
    ("PATCH", "/api/conversations/{conversation_id}"): owned(200),
    ("DELETE", "/api/conversations/{conversation_id}"): owned(204),
    ("GET", "/api/conversations/{conversation_id}/messages"): owned(200),
    ("POST", "/api/conversations/{conversation_id}/messages"): owned(201),
    ("WEBSOCKET", "/api/conversations/{conversation_id}/ws"): {
        "anonymous_off": 1008,
        "anonymous_on": 4404,
        "user": 101,
        "other_user": 4404,
        "admin": 4404,
    },
    ("GET", "/api/generations/{generation_id}"): owned(200),
    ("GET", "/api/generations/{generation_id}/events"): owned(200),
    # The owner's generation has finished: the owner is told it is not running (409).
    ("POST", "/api/generations/{generation_id}/cancel"): owned(409),
    ("POST", "/api/documents"): any_caller(202),
    ("GET", "/api/documents"): any_caller(200),
    ("GET", "/api/documents/{document_id}"): owned(200),
    ("GET", "/api/documents/{document_id}/text"): owned(200),
    ("GET", "/api/documents/{document_id}/events"): owned(200),
    ("POST", "/api/documents/{document_id}/retry"): owned(200),
    # The user's document is already indexed: the owner passes the guard and gets 409.
    ("POST", "/api/documents/{document_id}/cancel"): owned(409),
    ("DELETE", "/api/documents/{document_id}"): owned(204),
    ("POST", "/api/search"): any_caller(200),
    # The web chat page and its files hold no data: every call the page makes carries credentials.
    ("GET", "/ui"): everyone(200),
    ("MOUNT", "/ui/static"): everyone(200),
}


def route_keys(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route, included routers flattened."""
    keys: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, str(context.path)
        if isinstance(route, (WebSocketRoute, APIWebSocketRoute)):
            keys.add(("WEBSOCKET", path))
        elif isinstance(route, Mount):
            keys.add(("MOUNT", path))
        elif isinstance(route, Route):
            keys |= {(method, path) for method in context.methods or () if method != "HEAD"}
        else:
            keys.add((type(route).__name__, path))
    return keys


@dataclass
class World:
    user: Account
    other_user: Account
    admin: Account
    login_target: Account
    client_off: httpx.AsyncClient
    client_on: httpx.AsyncClient
    app_off: FastAPI
    app_on: FastAPI

    def headers_of(self, caller: str) -> dict[str, str]:
        account = {"user": self.user, "other_user": self.other_user, "admin": self.admin}
        return account[caller].headers if caller in account else {}

    def client_of(self, caller: str) -> httpx.AsyncClient:
        return self.client_on if caller == "anonymous_on" else self.client_off

    async def websocket_outcome(self, caller: str, path: str) -> int:
        """101 if the socket answers frames, else the code the server closed it with."""
        account = {"user": self.user, "other_user": self.other_user, "admin": self.admin}
        query = f"?token={account[caller].access_token}" if caller in account else ""
        app = self.app_on if caller == "anonymous_on" else self.app_off
        transport = ASGIWebSocketTransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
            aconnect_ws(f"http://testserver{path}{query}", http) as socket,
        ):
            try:
                await socket.send_json({"type": "cancel"})
                await socket.receive_json(timeout=10)
            except WebSocketDisconnect as closed:
                return closed.code
            return 101

    async def fresh_refresh_token(self) -> str:
        token: str = (await login(self.client_off, self.login_target.email)).json()["refresh_token"]
        return token


RequestBuilder = Callable[[World], Awaitable[dict[str, Any]]]


async def _chat(_: World) -> dict[str, Any]:
    return {"json": {"model": FAKE_CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]}}


async def _embeddings(_: World) -> dict[str, Any]:
    return {"json": {"model": FAKE_EMBEDDING_MODEL, "input": ["hi"]}}


async def _model(_: World) -> dict[str, Any]:
    return {"url": f"/v1/models/{FAKE_CHAT_MODEL}"}


async def _completion(_: World) -> dict[str, Any]:
    return {"json": {"model": FAKE_CHAT_MODEL, "prompt": "hi"}}


async def _response(_: World) -> dict[str, Any]:
    return {"json": {"model": FAKE_CHAT_MODEL, "input": "hi"}}


async def _users_response(world: World) -> dict[str, Any]:
    created = await world.client_off.post(
        "/v1/responses", json={"model": FAKE_CHAT_MODEL, "input": "hi"}, headers=world.user.headers
    )
    assert created.status_code == 200, created.text
    return {"url": f"/v1/responses/{created.json()['id']}"}


async def _register(_: World) -> dict[str, Any]:
    return {"json": {"email": unique_email("matrix"), "password": PASSWORD}}


async def _token(world: World) -> dict[str, Any]:
    return {"data": {"username": world.login_target.email, "password": PASSWORD}}


async def _refresh_token(world: World) -> dict[str, Any]:
    return {"json": {"refresh_token": await world.fresh_refresh_token()}}


async def _full_name(_: World) -> dict[str, Any]:
    return {"json": {"full_name": "Matrix"}}


async def _administer_user(world: World) -> dict[str, Any]:
    return {"url": f"/api/users/{world.user.id}", "json": {"is_active": True}}


async def _new_key(_: World) -> dict[str, Any]:
    return {"json": {"name": "matrix"}}


async def _users_key(world: World) -> dict[str, Any]:
    key = await new_api_key(world.client_off, world.user)
    return {"url": f"/api/keys/{key['id']}"}


async def _user_limits(world: World) -> dict[str, Any]:
    return {"url": f"/api/users/{world.user.id}/limits", "json": {"tokens_per_day": 10**9}}


async def _key_limits(world: World) -> dict[str, Any]:
    key = await new_api_key(world.client_off, world.user)
    return {"url": f"/api/keys/{key['id']}/limits", "json": {"tokens_per_day": 1000}}


async def _other_users_usage(world: World) -> dict[str, Any]:
    return {"params": {"user": world.other_user.id, "group_by": ["day", "model"]}}


async def _users_conversation(world: World) -> str:
    response = await world.client_off.post(
        "/api/conversations", json={"title": "matrix"}, headers=world.user.headers
    )
    assert response.status_code == 201, response.text
    return f"/api/conversations/{response.json()['id']}"


async def _conversation(world: World) -> dict[str, Any]:
    return {"url": await _users_conversation(world)}


async def _new_conversation(_: World) -> dict[str, Any]:
    return {"json": {"title": "matrix"}}


async def _rename_conversation(world: World) -> dict[str, Any]:
    return {"url": await _users_conversation(world), "json": {"title": "renamed"}}


async def _conversation_messages(world: World) -> dict[str, Any]:
    return {"url": f"{await _users_conversation(world)}/messages"}


async def _turn(world: World) -> dict[str, Any]:
    return {"url": f"{await _users_conversation(world)}/messages", "json": {"content": "hi"}}


async def _conversation_socket(world: World) -> dict[str, Any]:
    return {"url": f"{await _users_conversation(world)}/ws"}


async def _users_generation(world: World) -> str:
    url = f"{await _users_conversation(world)}/messages"
    response = await world.client_off.post(url, json={"content": "hi"}, headers=world.user.headers)
    assert response.status_code == 201, response.text
    return f"/api/generations/{response.json()['generation_id']}"


async def _generation(world: World) -> dict[str, Any]:
    return {"url": await _users_generation(world)}


async def _generation_events(world: World) -> dict[str, Any]:
    return {"url": f"{await _users_generation(world)}/events"}


async def _generation_cancel(world: World) -> dict[str, Any]:
    return {"url": f"{await _users_generation(world)}/cancel"}


async def _new_document(_: World) -> dict[str, Any]:
    content = f"matrix document {uuid.uuid4()}".encode()
    return {"files": {"file": ("matrix.txt", content, "text/plain")}}


async def _users_document(world: World, content: bytes, status: str) -> str:
    """A document of `user`, ingested until `status`."""
    created = await world.client_off.post(
        "/api/documents",
        files={"file": ("matrix.txt", content, "text/plain")},
        headers=world.user.headers,
    )
    document_id: str = created.json()["id"]
    final = await wait_for_final(world.client_off, world.user, document_id)
    assert final["status"] == status, final
    return document_id


async def _indexed_document(world: World) -> dict[str, Any]:
    document_id = await _users_document(world, f"indexed {uuid.uuid4()}".encode(), "indexed")
    return {"url": f"/api/documents/{document_id}"}


def _indexed_document_and(suffix: str) -> RequestBuilder:
    async def build(world: World) -> dict[str, Any]:
        request = await _indexed_document(world)
        return {"url": request["url"] + suffix}

    return build


async def _failed_document(world: World) -> dict[str, Any]:
    content = f"%PDF-1.4 broken {uuid.uuid4()}".encode()
    document_id = await _users_document(world, content, "failed")
    return {"url": f"/api/documents/{document_id}/retry"}


async def _search(_: World) -> dict[str, Any]:
    return {"json": {"query": "matrix document"}}


async def _ui_module(_: World) -> dict[str, Any]:
    return {"url": "/ui/static/app.js"}


REQUESTS: dict[tuple[str, str], RequestBuilder] = {
    ("POST", "/api/documents"): _new_document,
    ("GET", "/api/documents/{document_id}"): _indexed_document,
    ("GET", "/api/documents/{document_id}/text"): _indexed_document_and("/text"),
    ("GET", "/api/documents/{document_id}/events"): _indexed_document_and("/events"),
    ("POST", "/api/documents/{document_id}/retry"): _failed_document,
    ("POST", "/api/documents/{document_id}/cancel"): _indexed_document_and("/cancel"),
    ("DELETE", "/api/documents/{document_id}"): _indexed_document,
    ("POST", "/api/search"): _search,
    ("MOUNT", "/ui/static"): _ui_module,
    ("POST", "/v1/chat/completions"): _chat,
    ("POST", "/v1/embeddings"): _embeddings,
    ("GET", "/v1/models/{model_id}"): _model,
    ("POST", "/v1/completions"): _completion,
    ("POST", "/v1/responses"): _response,
    ("GET", "/v1/responses/{response_id}"): _users_response,
    ("DELETE", "/v1/responses/{response_id}"): _users_response,
    ("POST", "/api/auth/register"): _register,
    ("POST", "/api/auth/token"): _token,
    ("POST", "/api/auth/refresh"): _refresh_token,
    ("POST", "/api/auth/logout"): _refresh_token,
    ("PATCH", "/api/users/me"): _full_name,
    ("PATCH", "/api/users/{user_id}"): _administer_user,
    ("POST", "/api/keys"): _new_key,
    ("DELETE", "/api/keys/{key_id}"): _users_key,
    ("GET", "/api/users/{user_id}/limits"): _user_limits,
    ("PUT", "/api/users/{user_id}/limits"): _user_limits,
    ("DELETE", "/api/users/{user_id}/limits"): _user_limits,
    ("GET", "/api/keys/{key_id}/limits"): _key_limits,
    ("PUT", "/api/keys/{key_id}/limits"): _key_limits,
    ("DELETE", "/api/keys/{key_id}/limits"): _key_limits,
    ("GET", "/api/usage"): _other_users_usage,
    ("POST", "/api/conversations"): _new_conversation,
    ("GET", "/api/conversations/{conversation_id}"): _conversation,
    ("PATCH", "/api/conversations/{conversation_id}"): _rename_conversation,
    ("DELETE", "/api/conversations/{conversation_id}"): _conversation,
    ("GET", "/api/conversations/{conversation_id}/messages"): _conversation_messages,
    ("POST", "/api/conversations/{conversation_id}/messages"): _turn,
    ("WEBSOCKET", "/api/conversations/{conversation_id}/ws"): _conversation_socket,
    ("GET", "/api/generations/{generation_id}"): _generation,
    ("GET", "/api/generations/{generation_id}/events"): _generation_events,
    ("POST", "/api/generations/{generation_id}/cancel"): _generation_cancel,
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return settings_with_auth(tmp_path, database_url, allow_anonymous=False)


@pytest.fixture
async def anonymous_on_app(tmp_path: Path, database_url: str) -> AsyncIterator[FastAPI]:
    """A second app on the same database (and secret), with anonymous mode on."""
    settings = second_process(settings_with_auth(tmp_path, database_url, allow_anonymous=True))
    app = create_app(settings, models=make_fake_models())
    async with LifespanManager(app, startup_timeout=60):
        await runtime_of(app).models.start()
        yield app


@pytest.fixture
async def anonymous_on_client(anonymous_on_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(anonymous_on_app) as client:
        yield client


def test_every_route_is_in_the_matrix(app: FastAPI) -> None:
    routes = route_keys(app)
    assert sorted(routes - set(MATRIX)) == [], "routes without an entry: decide who may call them"
    assert sorted(set(MATRIX) - routes) == [], "entries for routes that no longer exist"
    assert set(REQUESTS) <= set(MATRIX)


async def test_authorization_matrix(
    app: FastAPI,
    client: httpx.AsyncClient,
    anonymous_on_app: FastAPI,
    anonymous_on_client: httpx.AsyncClient,
) -> None:
    world = World(
        user=await new_account(app, client, "user"),
        other_user=await new_account(app, client, "other"),
        admin=await new_account(app, client, "admin", role=Role.ADMIN),
        login_target=await new_account(app, client, "target"),
        client_off=client,
        client_on=anonymous_on_client,
        app_off=app,
        app_on=anonymous_on_app,
    )
    unexpected: list[str] = []
    for (method, path), expected in sorted(MATRIX.items()):
        if method == "MOUNT" and (method, path) not in REQUESTS:
            pytest.fail(f"teach the matrix to call {method} {path}")
        for caller in CALLERS:
            builder = REQUESTS.get((method, path))
            request = {"url": path, **(await builder(world) if builder else {})}
            if method == "WEBSOCKET":
                outcome = await world.websocket_outcome(caller, request["url"])
                if outcome != expected[caller]:
                    unexpected.append(
                        f"{method} {path} as {caller}: {outcome}, expected {expected[caller]}"
                    )
                continue
            headers = world.headers_of(caller)
            verb = "GET" if method == "MOUNT" else method
            response = await world.client_of(caller).request(verb, headers=headers, **request)
            if response.status_code != expected[caller]:
                unexpected.append(
                    f"{method} {path} as {caller}: {response.status_code}, "
                    f"expected {expected[caller]} ({response.text[:120]})"
                )
    assert unexpected == []
