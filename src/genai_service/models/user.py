"""Accounts: people, their role, and the built-in anonymous user."""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import CheckConstraint, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from genai_service.kit.db import Base, TimestampMixin

ANONYMOUS_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000000")
"""The fixed id of the built-in user that credential-less requests act as in anonymous mode."""
ANONYMOUS_EMAIL = "anonymous@genai-service.local"


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'user')", name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Normalised to lower case before it is stored or looked up."""
    hashed_password: Mapped[str | None] = mapped_column(String(255))
    """Argon2 hash; `None` for accounts nobody can log in to (the anonymous user)."""
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            native_enum=False,
            create_constraint=False,
            length=16,
            values_callable=lambda roles: [role.value for role in roles],
        ),
        default=Role.USER,
    )
    is_active: Mapped[bool] = mapped_column(default=True)

    @property
    def is_anonymous(self) -> bool:
        return self.id == ANONYMOUS_USER_ID

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
