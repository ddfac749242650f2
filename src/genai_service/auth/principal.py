"""Who calls one request: the user and the credential they called with.

A leaf module (it imports no other domain than the user model), so that the modules that check
credentials and the ones that remember or forget checked callers can share it without
importing each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from genai_service.models.user import User


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as its credential was checked."""

    user: User
    session_id: uuid.UUID | None = None
    """The refresh-token family of the access token used, if one was."""
    api_key_id: uuid.UUID | None = None
    expires_at: datetime | None = None
    """When the credential itself stops being valid, if it ever does."""

    @property
    def is_anonymous(self) -> bool:
        return self.user.is_anonymous
