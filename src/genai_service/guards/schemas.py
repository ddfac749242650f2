"""The limits and usage API's bodies."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from genai_service.models.usage import BudgetPeriod
from genai_service.settings import Limits


class LimitsUpdate(Limits):
    """A user's or key's own limits, replacing any set before: a field left out or `null` is no
    limit of its own."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class UserLimitsRead(BaseModel):
    user_id: uuid.UUID
    own: Limits | None = Field(
        description="Set for this user; `null`: none, the defaults of the user's role apply."
    )
    role_defaults: Limits
    in_force: Limits = Field(description="What the user's calls are held to.")


class KeyLimitsRead(BaseModel):
    api_key_id: uuid.UUID
    own: Limits | None = Field(description="Set for this key; `null`: none of its own.")
    owner: Limits = Field(description="Its owner's limits in force, which hold for it too.")
    in_force: Limits = Field(description="The tighter of its own and its owner's, per field.")


class BudgetRead(BaseModel):
    period: BudgetPeriod
    starts_at: datetime
    resets_at: datetime
    used: int = Field(description="Tokens of the calls settled in the period.")
    reserved: int = Field(description="Tokens held by calls in flight (the most they may use).")
    limit: int | None = Field(description="`null`: no limit.")
    remaining: int | None = Field(description="What a new call may reserve; `null`: no limit.")


class TokenTotals(BaseModel):
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelUsageRead(BaseModel):
    model: str
    day: TokenTotals
    month: TokenTotals


class KeyBudgetsRead(BaseModel):
    api_key_id: uuid.UUID
    day: BudgetRead
    month: BudgetRead


class UsageMeRead(BaseModel):
    """The caller's budgets now (the current UTC day and month) and its calls per model."""

    day: BudgetRead
    month: BudgetRead
    models: list[ModelUsageRead] = Field(description="Settled calls, all keys together.")
    key: KeyBudgetsRead | None = Field(
        description="The budgets of the API key the request came with; `null` without one."
    )


class UsageRowRead(BaseModel):
    """Usage summed over a group; the fields not grouped by are `null`."""

    day: date | None
    model: str | None
    user_id: uuid.UUID | None
    email: str | None
    api_key_id: uuid.UUID | None = Field(description="`null` also for calls without a key.")
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
