"""A remote server's replies read as the OpenAI SDK's types.

pydantic's compiled validator reads a conforming reply in a few microseconds. A reply it
rejects (a server that leaves out a field, or sends one of another type) is read leniently
instead, field by field as the SDK itself reads every reply, so that nothing that works with
the SDK stops working here.
"""

from __future__ import annotations

import json
from typing import TypeVar

import openai
import pydantic

Reply = TypeVar("Reply", bound=openai.BaseModel)


class UnreadableReply(ValueError):
    """The reply is not a JSON object."""


def read_reply(kind: type[Reply], data: bytes) -> Reply:
    """`data` as a `kind`; `UnreadableReply` if it is not a JSON object."""
    try:
        return kind.model_validate_json(data)
    except pydantic.ValidationError:
        pass
    try:
        fields = json.loads(data)
    except ValueError as exc:
        raise UnreadableReply("is not JSON") from exc
    if not isinstance(fields, dict):
        raise UnreadableReply("is not a JSON object")
    return kind.construct(**fields)


def stream_error(data: bytes) -> str | None:
    """The message of an error a server sends as an event of its stream (`{"error": ...}`)."""
    try:
        fields = json.loads(data)
    except ValueError:
        return None
    error = fields.get("error") if isinstance(fields, dict) else None
    if not error:
        return None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else str(error)
