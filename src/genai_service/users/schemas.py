from __future__ import annotations

import uuid
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from genai_service.auth.passwords import MAX_PASSWORD_LENGTH, NewPassword
from genai_service.models.user import Role

FullName = str | None


class UserCreate(BaseModel):
    """The design source's `UserCreate` (example 2-2), with an email as the login name."""

    email: EmailStr
    password: NewPassword
    full_name: FullName = Field(default=None, max_length=200)

    @field_validator("email")
    @classmethod
    def _lower_case(cls, value: str) -> str:
        return value.lower()


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    is_anonymous: bool
    created_at: datetime


class UserUpdateMe(BaseModel):
    """Fields left out stay as they are."""

    full_name: FullName = Field(default=None, max_length=200)
    password: NewPassword | None = None
    current_password: str | None = Field(default=None, max_length=MAX_PASSWORD_LENGTH)

    @model_validator(mode="after")
    def _password_change_needs_the_current_one(self) -> Self:
        if self.password is not None and self.current_password is None:
            raise ValueError("current_password is required to set a new password")
        return self


class UserAdminUpdate(BaseModel):
    role: Role | None = None
    is_active: bool | None = None
