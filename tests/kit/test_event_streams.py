"""`EventStreamResponse` on a real server: the status line and first piece written in the
request's own task, the rest after it, a client that leaves ending the stream, and a background
task run after the body; under a server of ASGI 2.4, where a send to a client that left raises,
the body without a listener; and a source that fails after the first piece, raised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.background import BackgroundTask
from starlette.types import Message

from genai_service.kit.event_streams import EventStreamResponse
from tests.conversations.support import serve
from tests.polling import wait_until


async def test_the_first_piece_is_written_in_the_requests_task_and_the_rest_follows() -> None:
    endpoint_task: list[asyncio.Task[object] | None] = []
    piece_tasks: list[asyncio.Task[object] | None] = []
    app = FastAPI()

    async def pieces() -> AsyncIterator[bytes]:
        for number in range(3):
            piece_tasks.append(asyncio.current_task())
            yield b"data: %d\n\n" % number

    @app.get("/events")
    async def events() -> EventStreamResponse:
        endpoint_task.append(asyncio.current_task())
        return EventStreamResponse(pieces(), headers={"X-Stream": "yes"})

    async for url in serve(app):
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-stream"] == "yes"
    assert response.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert piece_tasks[0] is endpoint_task[0]
    # The rest is written by Starlette's streaming task, beside the one that listens for the
    # client leaving.
    assert piece_tasks[1] is not endpoint_task[0]


async def test_an_empty_stream_is_an_empty_body() -> None:
    app = FastAPI()

    async def nothing() -> AsyncIterator[bytes]:
        empty: tuple[bytes, ...] = ()
        for piece in empty:
            yield piece

    @app.get("/events")
    async def events() -> EventStreamResponse:
        return EventStreamResponse(nothing())

    async for url in serve(app):
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/events")
    assert response.status_code == 200
    assert response.text == ""


async def test_a_client_that_leaves_after_the_first_piece_ends_the_stream() -> None:
    ended: list[str] = []
    never = asyncio.Event()
    app = FastAPI()

    async def pieces() -> AsyncIterator[bytes]:
        try:
            yield b"data: first\n\n"
            await never.wait()  # a model that has nothing more to say yet
            yield b"data: never\n\n"
        finally:
            ended.append("closed")

    @app.get("/events")
    async def events() -> EventStreamResponse:
        return EventStreamResponse(pieces())

    async for url in serve(app):
        async with (
            httpx.AsyncClient(base_url=url) as http,
            http.stream("GET", "/events") as response,
        ):
            lines = response.aiter_lines()
            assert await anext(lines) == "data: first"
        # The client has gone: the server notices and closes the stream.
        await wait_until(lambda: ended == ["closed"], within=10)


async def test_under_asgi_2_4_the_body_is_written_without_listening_for_the_client() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"data: 0\n\n"
        yield b"data: 1\n\n"

    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("nothing listens for the client under ASGI 2.4")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}}
    await EventStreamResponse(pieces())(scope, receive, send)
    assert [message["type"] for message in sent] == ["http.response.start"] + [
        "http.response.body"
    ] * 3
    assert [message.get("body") for message in sent[1:]] == [b"data: 0\n\n", b"data: 1\n\n", b""]
    assert [message.get("more_body") for message in sent[1:]] == [True, True, False]


async def test_a_background_task_runs_once_the_body_is_written() -> None:
    happened: list[str] = []
    app = FastAPI()

    async def pieces() -> AsyncIterator[bytes]:
        for number in range(2):
            yield b"data: %d\n\n" % number
        happened.append("body written")

    async def afterwards() -> None:
        happened.append("background")

    @app.get("/events")
    async def events() -> EventStreamResponse:
        return EventStreamResponse(pieces(), background=BackgroundTask(afterwards))

    async for url in serve(app):
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/events")
        await wait_until(lambda: len(happened) == 2, within=10)
    assert response.text == "data: 0\n\ndata: 1\n\n"
    assert happened == ["body written", "background"]


async def test_an_error_after_the_first_piece_is_raised_to_the_server() -> None:
    """The status line has gone: the server can only cut the response, as it does for any
    streamed body that fails (Starlette raises the error out of its task group likewise)."""

    async def pieces() -> AsyncIterator[bytes]:
        yield b"data: 0\n\n"
        raise RuntimeError("the source failed")

    sent: list[Message] = []
    client_stays = asyncio.Event()

    async def receive() -> Message:
        await client_stays.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}}
    with pytest.raises(RuntimeError, match="the source failed"):
        await EventStreamResponse(pieces())(scope, receive, send)
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"data: 0\n\n"
    assert sent[1]["more_body"] is True
