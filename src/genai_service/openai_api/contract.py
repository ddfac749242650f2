"""The OpenAI surface's request contract: every field honoured, accepted as a no-op, or refused.

Nothing a client sends is dropped without a word. A request body model derives from
`OpenAIRequest`, which forbids fields it does not declare: a field OpenAI does not define (or
that this server does not serve) answers `400` naming it. A field OpenAI defines but this
server cannot honour is declared with `refused(...)`: sending it with anything but its neutral
value answers `400` saying why. Fields that have no effect here by definition (`user`,
`metadata`, `store`, ...) are declared plainly and documented as such in docs/models.md.
"""

from __future__ import annotations

from typing import Any

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

UNSUPPORTED = "unsupported_parameter"
"""The validation error type of a refused field."""


class OpenAIRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenAIPart(BaseModel):
    """A nested object of a request body: unknown keys are refused as well."""

    model_config = ConfigDict(extra="forbid")


def refused(reason: str, *, neutral: tuple[Any, ...] = (None,)) -> AfterValidator:
    """A field accepted only with one of its `neutral` values; anything else is a `400`."""

    def check(value: Any) -> Any:
        if any(value == allowed for allowed in neutral):
            return value
        raise PydanticCustomError(UNSUPPORTED, "not supported: {reason}", {"reason": reason})

    return AfterValidator(check)
