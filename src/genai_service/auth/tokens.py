"""Access tokens: short-lived HS256 JWTs signed with the service's secret key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105  # nosec B105  # a claim value, not a secret
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "type", "sid")


class InvalidAccessToken(Exception):
    """The token is malformed, forged, of another type, or expired."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    """The refresh-token family the token was issued with: revoking it ends the session."""
    expires_at: datetime


class AccessTokenCodec:
    def __init__(self, secret_key: str, ttl: timedelta) -> None:
        self._key = secret_key
        self.ttl = ttl

    def encode(self, *, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime) -> str:
        claims = {
            "sub": str(user_id),
            "sid": str(session_id),
            "type": ACCESS_TOKEN_TYPE,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + self.ttl,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def decode(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require": list(REQUIRED_CLAIMS)},
            )
            if claims["type"] != ACCESS_TOKEN_TYPE:
                raise InvalidAccessToken("not an access token")
            return AccessClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                session_id=uuid.UUID(str(claims["sid"])),
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            )
        except (jwt.InvalidTokenError, ValueError) as error:
            raise InvalidAccessToken(str(error)) from error
