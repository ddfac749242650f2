from __future__ import annotations

import httpx


async def test_chat_endpoint_of_the_design_source(client: httpx.AsyncClient) -> None:
    default = await client.get("/chat")
    assert default.status_code == 200
    assert set(default.json()) == {"statement"}
    assert default.json()["statement"]
    asked = await client.get("/chat", params={"prompt": "hello"})
    assert asked.json()["statement"] != default.json()["statement"]
    assert (await client.get("/chat", params={"prompt": ""})).status_code == 422
