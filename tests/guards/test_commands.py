"""`genai-service limits set/show/clear` and `genai-service usage`, run as real processes on the
database the API serves: what they set is what the API reads, and the other way round."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from genai_service.cli import app as cli_app
from tests.conftest import FAKE_CHAT_MODEL
from tests.identity import Account, new_api_key


async def cli(*args: str, database_url: str, tmp_path: Path) -> tuple[int, str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_")},
        "GENAI_CONFIG": os.devnull,
        "GENAI_DATABASE_URL": database_url,
        "GENAI_DATA_DIR": str(tmp_path / "data"),
        "GENAI_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",  # rich's tables: wide enough that no cell is cut
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "genai_service", *args,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def own_limits(client: httpx.AsyncClient, admin: Account, user: Account) -> Any:
    response = await client.get(f"/api/users/{user.id}/limits", headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()["own"]


async def test_an_operator_sets_shows_and_clears_a_users_limits(
    client: httpx.AsyncClient, admin: Account, alice: Account, database_url: str, tmp_path: Path
) -> None:
    async def run(*args: str) -> tuple[int, str, str]:
        return await cli(*args, database_url=database_url, tmp_path=tmp_path)

    code, out, err = await run("limits", "set", "--email", alice.email, "--tokens-per-day", "500")
    assert code == 0, err
    assert "tokens_per_day" in out
    assert "500" in out
    assert (await own_limits(client, admin, alice))["tokens_per_day"] == 500

    code, _, err = await run("limits", "set", "--email", alice.email, "--max-concurrent", "2")
    assert code == 0, err
    own = await own_limits(client, admin, alice)
    assert (own["tokens_per_day"], own["max_concurrent"]) == (500, 2)  # the other kept

    code, out, err = await run("limits", "set", "--email", alice.email, "--tokens-per-day", "none")
    assert code == 0, err
    own = await own_limits(client, admin, alice)
    assert (own["tokens_per_day"], own["max_concurrent"]) == (None, 2)

    code, out, err = await run("limits", "show", "--email", alice.email)
    assert code == 0, err
    assert "in force" in out
    assert "max_concurrent" in out

    code, out, err = await run("limits", "clear", "--email", alice.email)
    assert code == 0, err
    assert await own_limits(client, admin, alice) is None


async def test_a_keys_limits_from_the_command_line_stay_under_its_owners(
    client: httpx.AsyncClient, admin: Account, alice: Account, database_url: str, tmp_path: Path
) -> None:
    key = await new_api_key(client, alice)
    response = await client.put(
        f"/api/users/{alice.id}/limits", json={"tokens_per_day": 100}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    code, _, err = await cli(
        "limits", "set", "--key", key["id"], "--tokens-per-day", "200",
        database_url=database_url, tmp_path=tmp_path,
    )  # fmt: skip
    assert code == 1
    assert "above the key owner's tokens_per_day of 100" in err
    code, _, err = await cli(
        "limits", "set", "--key", key["id"], "--tokens-per-day", "50",
        database_url=database_url, tmp_path=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    read = await client.get(f"/api/keys/{key['id']}/limits", headers=alice.headers)
    assert read.json()["own"]["tokens_per_day"] == 50


@pytest.mark.parametrize(
    "args",
    [
        ["limits", "set", "--email", "a@example.com"],  # no limit given
        ["limits", "set", "--email", "a@example.com", "--tokens-per-day", "lots"],
        ["limits", "show"],  # neither --email nor --key
        ["limits", "show", "--email", "a@example.com", "--key", str(uuid.uuid4())],
        ["usage", "--since", "yesterday"],
        ["usage", "--by", "colour"],
    ],
)
def test_limits_and_usage_refuse_what_they_cannot_read(args: list[str]) -> None:
    """Refused before anything is opened: exit status 2 and what was wrong."""
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 2, result.output


async def test_limits_commands_refuse_what_the_database_does_not_allow(
    database_url: str, tmp_path: Path, alice: Account
) -> None:
    code, _, err = await cli(
        "limits", "set", "--email", alice.email, "--max-concurrent", "0",
        database_url=database_url, tmp_path=tmp_path,
    )  # fmt: skip
    assert code == 2
    assert "max_concurrent" in err
    code, _, err = await cli(
        "limits", "show", "--email", "nobody@example.com",
        database_url=database_url, tmp_path=tmp_path,
    )  # fmt: skip
    assert code == 1
    assert "No user with this email" in err


async def test_usage_prints_the_ledger_per_user_and_model(
    client: httpx.AsyncClient, alice: Account, database_url: str, tmp_path: Path
) -> None:
    for _ in range(2):
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": FAKE_CHAT_MODEL,
                "messages": [{"role": "user", "content": "hello there"}],
                "max_tokens": 10,
            },
            headers=alice.headers,
        )
        assert response.status_code == 200, response.text
    tokens = 2 * response.json()["usage"]["total_tokens"]
    code, out, err = await cli(
        "usage", "--email", alice.email, database_url=database_url, tmp_path=tmp_path
    )
    assert code == 0, err
    row = next(line for line in out.splitlines() if alice.email in line)
    cells = [cell.strip() for cell in row.strip("│┃ ").split("│")]
    assert cells[1:] == [FAKE_CHAT_MODEL, "2", *cells[3:5], str(tokens)]
    code, out, err = await cli(
        "usage",
        "--by",
        "day",
        "--since",
        "2000-01-01",
        database_url=database_url,
        tmp_path=tmp_path,
    )
    assert code == 0, err
    assert str(tokens) in out
