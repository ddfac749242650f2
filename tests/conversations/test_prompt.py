"""The prompt of a turn fits the model's context window: history windowing and sources."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from genai_service.conversations.prompt import build_prompt
from genai_service.inference.base import ChatMessage, PromptTooLong
from genai_service.retrieval.sources import Source
from genai_service.runtime import runtime_of
from tests.conversations.support import SMALL_CHAT_MODEL, SMALL_CONTEXT, ask, new_conversation
from tests.fakes import ScriptedChatModel
from tests.identity import Account


def history(turns: int) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for number in range(turns):
        messages.append(ChatMessage(role="user", content=f"question {number} with five words"))
        messages.append(ChatMessage(role="assistant", content=f"answer {number}"))
    return messages


def source(text: str, score: float) -> Source:
    return Source(
        document_id=uuid.uuid4(),
        filename="notes.txt",
        chunk_index=0,
        page=None,
        start=0,
        end=len(text),
        score=score,
        text=text,
    )


def test_the_newest_history_that_fits_is_kept() -> None:
    model = ScriptedChatModel(context_window=40)
    prompt = build_prompt(
        model, system_prompt="Be brief.", history=history(10), question="now what", max_tokens=10
    )
    assert model.count_tokens(prompt.messages) <= 40 - 10
    assert prompt.messages[0] == ChatMessage(role="system", content="Be brief.")
    assert prompt.messages[-1] == ChatMessage(role="user", content="now what")
    kept = prompt.messages[1:-1]
    assert kept == history(10)[-len(kept) :]
    # One more message would not have fitted.
    one_more = history(10)[-len(kept) - 1 :]
    assert model.count_tokens([prompt.messages[0], *one_more, prompt.messages[-1]]) > 30
    assert prompt.prompt_tokens == model.count_tokens(prompt.messages)


def test_everything_is_kept_when_it_fits() -> None:
    model = ScriptedChatModel(context_window=4096)
    prompt = build_prompt(
        model, system_prompt=None, history=history(3), question="hi", max_tokens=100
    )
    assert prompt.messages == [*history(3), ChatMessage(role="user", content="hi")]


def test_the_question_alone_must_fit() -> None:
    model = ScriptedChatModel(context_window=20)
    with pytest.raises(PromptTooLong):
        build_prompt(model, system_prompt="a b c", history=[], question="x " * 10, max_tokens=10)


def test_lowest_scored_sources_are_dropped_first() -> None:
    model = ScriptedChatModel(context_window=120)
    best = source("alpha " * 20, 0.9)
    middle = source("beta " * 20, 0.8)
    worst = source("gamma " * 20, 0.5)
    prompt = build_prompt(
        model,
        system_prompt=None,
        history=history(5),
        question="what about alpha",
        max_tokens=20,
        sources=[worst, best, middle],
    )
    assert prompt.sources == [best, middle]
    system = prompt.messages[0].content
    assert system.index("[1]") < system.index("alpha") < system.index("[2]") < system.index("beta")
    assert "gamma" not in system
    assert model.count_tokens(prompt.messages) <= 120 - 20


async def test_long_conversations_never_exceed_the_context(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Long", model=SMALL_CHAT_MODEL)
    for number in range(12):
        response = await ask(
            client, alice, conversation["id"], f"tell me about item {number} please", max_tokens=8
        )
        assert response.status_code == 201, response.text
    model = runtime_of(app).models.chat(SMALL_CHAT_MODEL)
    assert len(model.requests) == 12
    for request in model.requests:
        assert model.count_tokens(request.messages) + request.sampling.max_tokens <= SMALL_CONTEXT
    last = model.requests[-1].messages
    assert last[-1].content == "tell me about item 11 please"
    assert last[-2].content == "You said: tell me about item 10 please"
    assert not any("item 0 " in message.content for message in last)


async def test_the_default_reply_budget_fits_small_models(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    conversation = await new_conversation(client, alice, title="Small", model=SMALL_CHAT_MODEL)
    response = await ask(client, alice, conversation["id"], "hello")
    assert response.status_code == 201, response.text
    request = runtime_of(app).models.chat(SMALL_CHAT_MODEL).requests[-1]
    assert request.sampling.max_tokens == SMALL_CONTEXT // 2
    too_many = await ask(client, alice, conversation["id"], "hello", max_tokens=SMALL_CONTEXT)
    assert too_many.status_code == 400
