from __future__ import annotations

import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import ValidationError

from genai_service.auth import passwords
from genai_service.auth.passwords import hash_password, verify_password
from genai_service.users.schemas import UserCreate


def rule_codes(password: str) -> list[str]:
    try:
        UserCreate(email="someone@example.com", password=password)
    except ValidationError as error:
        errors = error.errors()
    else:
        return []
    assert all(e["loc"] == ("password",) for e in errors)
    return sorted(e["type"] for e in errors)


@pytest.mark.parametrize(
    ("password", "broken"),
    [
        ("Abcdef1", ["password_too_short"]),
        ("Abcdefgh", ["password_no_digit"]),
        ("abcdefg1", ["password_no_uppercase"]),
        ("A1" + "x" * 127, ["password_too_long"]),
        ("abc", ["password_no_digit", "password_no_uppercase", "password_too_short"]),
        ("", ["password_no_digit", "password_no_uppercase", "password_too_short"]),
    ],
)
def test_each_broken_rule_is_reported(password: str, broken: list[str]) -> None:
    assert rule_codes(password) == broken


@pytest.mark.parametrize("password", ["Abcdefg1", "A1" + "x" * 126, "ÄÖÜ-straße-٣"])
def test_passwords_that_keep_the_policy(password: str) -> None:
    assert rule_codes(password) == []


def test_rule_messages_are_the_design_sources() -> None:
    with pytest.raises(ValidationError) as raised:
        UserCreate(email="someone@example.com", password="short")
    messages = {e["msg"] for e in raised.value.errors()}
    assert messages == {
        "Password must be at least 8 characters long",
        "Password must contain at least one digit",
        "Password must contain at least one uppercase letter",
    }


async def test_hash_and_verify() -> None:
    hashed = await hash_password("Abcdefg1")
    assert hashed.startswith("$argon2id$")
    assert "Abcdefg1" not in hashed
    assert await verify_password("Abcdefg1", hashed) == (True, None)
    assert (await verify_password("Abcdefg2", hashed))[0] is False


async def test_an_outdated_hash_is_replaced_on_verification() -> None:
    old = Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("Abcdefg1")
    matches, new_hash = await verify_password("Abcdefg1", old)
    assert matches
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_no_stored_hash_never_matches() -> None:
    assert await verify_password("Abcdefg1", None) == (False, None)


def test_the_dummy_hash_costs_as_much_as_a_real_one() -> None:
    """Unknown accounts are refused after verifying the dummy hash: it must use the current
    parameters, or timing would tell unknown emails from wrong passwords."""
    hasher = passwords._HASHER.current_hasher
    assert isinstance(hasher, Argon2Hasher)
    assert hasher.identify(passwords._DUMMY_HASH)
    assert not hasher.check_needs_rehash(passwords._DUMMY_HASH)
