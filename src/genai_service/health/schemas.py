from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    status: str = "healthy"
    name: str | None = None
    version: str | None = None


class Readiness(BaseModel):
    status: str
    checks: dict[str, bool]
