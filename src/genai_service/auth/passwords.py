"""Passwords: the design source's policy (example 2-2) and argon2 hashing off the event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from weakref import WeakKeyDictionary

import anyio.to_thread
from anyio import CapacityLimiter
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import AfterValidator, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


@dataclass(frozen=True, slots=True)
class PasswordRule:
    code: str
    message: str
    holds: Callable[[str], bool]


PASSWORD_RULES = (
    PasswordRule(
        "password_too_short",
        f"Password must be at least {MIN_PASSWORD_LENGTH} characters long",
        lambda value: len(value) >= MIN_PASSWORD_LENGTH,
    ),
    PasswordRule(
        "password_too_long",
        f"Password must be at most {MAX_PASSWORD_LENGTH} characters long",
        lambda value: len(value) <= MAX_PASSWORD_LENGTH,
    ),
    PasswordRule(
        "password_no_digit",
        "Password must contain at least one digit",
        lambda value: any(char.isdigit() for char in value),
    ),
    PasswordRule(
        "password_no_uppercase",
        "Password must contain at least one uppercase letter",
        lambda value: any(char.isupper() for char in value),
    ),
)


def broken_rules(password: str) -> list[PasswordRule]:
    return [rule for rule in PASSWORD_RULES if not rule.holds(password)]


def enforce_password_policy(password: str) -> str:
    """Validate a new password, reporting every broken rule at once (one error per rule)."""
    broken = broken_rules(password)
    if broken:
        raise ValidationError.from_exception_data(
            "password",
            [
                InitErrorDetails(type=PydanticCustomError(rule.code, rule.message), input="")
                for rule in broken
            ],
        )
    return password


NewPassword = Annotated[
    str,
    AfterValidator(enforce_password_policy),
    Field(
        description=(
            f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters, "
            "with at least one digit and one uppercase letter."
        ),
        json_schema_extra={"minLength": MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_LENGTH},
    ),
]
"""A password being set: the policy is checked. (Passwords being *checked* are plain `str`.)"""

# OWASP's recommended argon2id parameters: 19 MiB, 2 iterations, 1 lane (~0.1 s on one core).
_HASHER = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19 * 1024, parallelism=1),))
# A hash of a random, forgotten password, with the parameters above: verified against when the
# account does not exist, so an unknown email takes as long to refuse as a wrong password.
_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$gIUqWJR2z79QXTUwWoM/lw"
    "$Y8bGj896rf2oqg69NrXgeKOmueYNdoqBQ0PaBH6Lwgk"
)
# Each hash holds 19 MiB while it runs: bound how many run at once, per event loop.
_HASHING_THREADS = max(2, os.cpu_count() or 2)
_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()


def _limiter() -> CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(_HASHING_THREADS)
    return limiter


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_HASHER.hash, password, limiter=_limiter())


async def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Whether `password` matches `hashed`, and a new hash when the stored one is outdated.

    With no stored hash (unknown account, or one without a password) a dummy hash is verified
    anyway and the answer is `False`: the time taken does not tell the two cases apart.
    """
    if hashed is None:
        await anyio.to_thread.run_sync(_HASHER.verify, password, _DUMMY_HASH, limiter=_limiter())
        return False, None
    return await anyio.to_thread.run_sync(
        _HASHER.verify_and_update, password, hashed, limiter=_limiter()
    )
