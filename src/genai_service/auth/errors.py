"""The 401s of authentication. Each carries the `WWW-Authenticate: Bearer` challenge."""

from __future__ import annotations

from genai_service.kit.errors import Unauthorized


class AuthenticationRequired(Unauthorized):
    title = "Authentication required"
    slug = "authentication-required"

    def __init__(
        self,
        detail: str = "Authentication required: send `Authorization: Bearer <token or API key>`.",
    ) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidCredentials(Unauthorized):
    title = "Invalid credentials"
    slug = "invalid-credentials"

    def __init__(self, detail: str = "The credentials are invalid, expired or revoked.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class LoginFailed(Unauthorized):
    title = "Login failed"
    slug = "login-failed"

    def __init__(self, detail: str = "Incorrect email or password.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})
