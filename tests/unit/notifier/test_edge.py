"""The flat routes take the authenticator their app was built with (edge.py binds it into each request):
two apps in one process, each with its own admin token and mode, each keeps to its own."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from services.notifier import api, incident_api
from services.notifier.policy import load_policy
from services.notifier.repository import MemoryIncidentStore
from services.notifier.service import NotifierService
from shared.auth import AuthSettings, Authenticator
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender


def _app(*, token: str, env: str) -> FastAPI:
    app = FastAPI()
    auth = Authenticator(AuthSettings(admin_token=SecretStr(token), env=env))
    app.include_router(api.build_router(auth))
    app.include_router(incident_api.build_router(auth))
    app.state.notifier = NotifierService(policy=load_policy(CONFIG), publisher=InMemoryPublisher(),
                                         store=MemoryIncidentStore(), sender=FakeSender())
    return app


async def _codes(app: FastAPI, token: str) -> tuple[int, int, int]:
    bearer = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        ack = (await c.post("/api/incidents/inc-none/acknowledge", headers=bearer)).status_code
        listing = (await c.get("/api/incidents")).status_code
        oncall = (await c.get("/api/oncall")).status_code
    return ack, listing, oncall


async def test_each_app_keeps_its_own_authenticator() -> None:
    local, production = _app(token="tok-a", env="local"), _app(token="tok-b", env="production")
    assert await _codes(local, "tok-a") == (404, 200, 200)  # its token, local mode: anonymous may read
    assert await _codes(local, "tok-b") == (401, 200, 200)
    assert await _codes(production, "tok-b") == (404, 401, 401)  # production: reading needs a key
    assert await _codes(production, "tok-a") == (401, 401, 401)
