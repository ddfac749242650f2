"""`genai-service users create` and `keys create`, run as real processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.identity import PASSWORD, bearer, login, unique_email


async def cli(
    *args: str, database_url: str, tmp_path: Path, stdin: str = ""
) -> tuple[int, str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_")},
        "GENAI_DATABASE_URL": database_url,
        "GENAI_DATA_DIR": str(tmp_path / "data"),
        "GENAI_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "genai_service", *args,
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_users_create_and_keys_create(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    email = unique_email("Root").replace("root", "Root")
    code, out, err = await cli(
        "users", "create", "--email", email, "--password", PASSWORD, "--admin",
        database_url=database_url, tmp_path=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert email.lower() in out
    assert PASSWORD not in out + err

    tokens = (await login(client, email)).json()
    me = (await client.get("/api/users/me", headers=bearer(tokens["access_token"]))).json()
    assert (me["email"], me["role"]) == (email.lower(), "admin")

    code, out, err = await cli(
        "keys", "create", "--email", email, "--name", "deploy",
        database_url=database_url, tmp_path=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("gsk_")
    assert "\n" not in secret
    assert "not shown again" in err
    assert (await client.get("/v1/models", headers=bearer(secret))).status_code == 200
    listed = (await client.get("/api/keys", headers=bearer(tokens["access_token"]))).json()
    assert [k["name"] for k in listed["items"]] == ["deploy"]
    assert secret not in str(listed)


async def test_users_create_prompts_for_the_password(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    email = unique_email("prompted")
    code, _, err = await cli(
        "users", "create", "--email", email,
        database_url=database_url, tmp_path=tmp_path, stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert code == 0, err
    assert PASSWORD not in err
    assert (await login(client, email)).status_code == 200


async def test_cli_refusals(client: httpx.AsyncClient, database_url: str, tmp_path: Path) -> None:
    email = unique_email()
    code, _, err = await cli(
        "users", "create", "--email", email, "--password", "weak",
        database_url=database_url, tmp_path=tmp_path,
    )  # fmt: skip
    assert code == 2
    for rule in ("at least 8 characters", "at least one digit", "at least one uppercase letter"):
        assert rule in err
    assert (await login(client, email, "weak")).status_code == 401

    args = ("users", "create", "--email", email, "--password", PASSWORD)
    assert (await cli(*args, database_url=database_url, tmp_path=tmp_path))[0] == 0
    code, _, err = await cli(*args, database_url=database_url, tmp_path=tmp_path)
    assert code == 1
    assert "already exists" in err

    code, out, err = await cli(
        "keys", "create", "--email", unique_email("nobody"), "--name", "x",
        database_url=database_url, tmp_path=tmp_path,
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert "No user" in err
