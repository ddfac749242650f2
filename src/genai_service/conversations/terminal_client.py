"""A terminal client of a running server: ask in a conversation, print the reply as it streams,
then the sources it cites."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

CONNECT_TIMEOUT_S = 10.0


class AskFailed(Exception):
    """The server refused the question or the reply failed; the message says why."""


@dataclass(frozen=True, slots=True)
class Question:
    content: str
    documents: str | list[str] | None = None
    """`"all"`, document ids, or `None` for no documents."""
    conversation_id: str | None = None
    """Continue this conversation; default: start a new one."""
    max_tokens: int | None = None
    temperature: float | None = None


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return str(body.get("detail") or body.get("title") or f"HTTP {response.status_code}")


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event type, data) of each server-sent event; comments (heartbeats) are skipped."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))


def _print_sources(message: dict[str, Any], out: TextIO) -> None:
    citations = message.get("citations") or []
    if not citations:
        return
    out.write("\nSources:\n")
    for number, citation in enumerate(citations, start=1):
        page = f", page {citation['page']}" if citation.get("page") else ""
        quote = " ".join(citation["quote"].split())
        out.write(
            f"[{number}] {citation['filename']}{page}, characters "
            f"{citation['start']}-{citation['end']} (score {citation['score']:.2f}): {quote}\n"
        )


def ask(client: httpx.Client, question: Question, out: TextIO) -> dict[str, Any]:
    """Ask `question`, writing the reply to `out` as it streams; the stored reply."""
    conversation_id = question.conversation_id
    if conversation_id is None:
        created = client.post("/api/conversations", json={})
        if created.status_code != httpx.codes.CREATED:
            raise AskFailed(_problem_detail(created))
        conversation_id = str(created.json()["id"])
    turn: dict[str, Any] = {"content": question.content, "stream": True}
    optional = {
        "documents": question.documents,
        "max_tokens": question.max_tokens,
        "temperature": question.temperature,
    }
    turn.update({name: value for name, value in optional.items() if value is not None})
    url = f"/api/conversations/{conversation_id}/messages"
    with client.stream("POST", url, json=turn) as response:
        if response.status_code != httpx.codes.OK:
            response.read()
            raise AskFailed(_problem_detail(response))
        for event, data in _events(response.iter_lines()):
            if event == "delta":
                out.write(data["text"])
                out.flush()
            elif event == "error":
                raise AskFailed(str(data.get("detail") or "the reply failed"))
            elif event == "done":
                message: dict[str, Any] = data["message"]
                out.write("\n")
                _print_sources(message, out)
                return message
    raise AskFailed("the server closed the stream before the reply was complete")


def connect(base_url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx.Timeout(CONNECT_TIMEOUT_S, read=None)
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)
