"""What the gateway asks before a model call and tells after it: the guard protocol.

A guard admits a call (or refuses it with an `AppError`, a `429` as a rule) and hands back an
`Admission`, which the gateway settles exactly once when the call ends — completed, failed,
cancelled, or its client gone — with what the call really used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from genai_service.gateway.caller import Caller, Purpose

ModelKind = Literal["chat", "embedding"]
CallStatus = Literal["completed", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class ModelCall:
    caller: Caller
    purpose: Purpose
    model: str
    kind: ModelKind
    prompt_tokens: int
    """Exact for local models, the documented estimate for remote ones."""
    max_completion_tokens: int
    """The most the reply may take (0 for embeddings)."""

    @property
    def most_tokens(self) -> int:
        """What the call may use at most: what a reservation holds."""
        return self.prompt_tokens + self.max_completion_tokens


@dataclass(frozen=True, slots=True)
class CallOutcome:
    status: CallStatus
    prompt_tokens: int
    completion_tokens: int
    duration_ms: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Admission(Protocol):
    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers telling the caller where it stands (rate limits)."""
        ...

    @property
    def settles_in_memory(self) -> bool:
        """Settling waits on nothing (no database, no Redis): the call's own task settles it,
        as no cancellation can cut short what never waits. One that waits is settled in a task
        of its own."""
        ...

    async def settle(self, outcome: CallOutcome) -> None:
        """Count what the call used instead of what it held; called once, never raises."""
        ...


class Guard(Protocol):
    async def admit(self, call: ModelCall) -> Admission:
        """Admit `call`, holding what it may use, or raise (a `429` as a rule)."""
        ...
