"""A budgeted user on a real uvicorn: the app built in the test (fake models), served from a
thread of this process, with the user's daily budget set by an admin through the API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
from fastapi import FastAPI

from genai_service.app import create_app
from genai_service.models.user import Role
from genai_service.runtime import runtime_of
from genai_service.settings import Settings
from tests.guards.budget_support import BudgetState, budget_state
from tests.guards.fake_model_server import fake_models
from tests.identity import PASSWORD, Account, insert_user, unique_email
from tests.live_server import LiveServer, ThreadedServer


@dataclass
class Budgeted:
    server: ThreadedServer
    app: FastAPI
    user: Account
    admin: Account

    def set_tokens_per_day(self, tokens: int) -> None:
        response = httpx.put(
            f"{self.base_url}/api/users/{self.user.id}/limits",
            json={"tokens_per_day": tokens},
            headers=self.admin.headers,
        )
        assert response.status_code == 200, response.text

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def state(self) -> BudgetState:
        sessionmaker = runtime_of(self.app).sessionmaker
        return self.server.run(budget_state(sessionmaker, self.user.id))

    def openai(self, base_url: str | None = None) -> openai.AsyncOpenAI:
        """The official client as the user, against this server or another on its database."""
        return openai.AsyncOpenAI(
            base_url=f"{base_url or self.base_url}/v1",
            api_key=self.user.access_token,
            max_retries=0,
        )


def signed_in(server: ThreadedServer, app: FastAPI, name: str, role: Role) -> Account:
    email = unique_email(name)
    user_id = server.run(insert_user(app, email, role=role))
    response = httpx.post(
        f"{server.base_url}/api/auth/token", data={"username": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return Account(user_id, email, PASSWORD, access_token=response.json()["access_token"])


@contextmanager
def serving_budgeted(settings: Settings, tokens_per_day: int) -> Iterator[Budgeted]:
    app = create_app(settings, models=fake_models())
    with ThreadedServer(app) as server:
        admin = signed_in(server, app, "admin", Role.ADMIN)
        budgeted = Budgeted(server, app, signed_in(server, app, "user", Role.USER), admin)
        budgeted.set_tokens_per_day(tokens_per_day)
        yield budgeted


REPOSITORY = Path(__file__).resolve().parents[2]


def second_server(settings: Settings, data_dir: Path, **env: str) -> LiveServer:
    """A `tests.guards.fake_model_server` process on the database and secret of `settings`
    (which must name its secret), leaving ingestion to the first process."""
    assert settings.secret_key is not None
    return LiveServer(
        data_dir,
        {
            "GENAI_CONFIG": os.devnull,
            "GENAI_DATABASE_URL": settings.sqlalchemy_url,
            "GENAI_SECRET_KEY": settings.secret_key.get_secret_value(),
            "GENAI_DOCUMENTS__RUN_INGESTION": "false",
            "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")]),
            **env,
        },
        module=("tests.guards.fake_model_server",),
    )
