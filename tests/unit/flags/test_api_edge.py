"""The management API's edge on the in-memory core: credentials are checked before the body is read,
`json_body` parses JSON whatever the Content-Type (the runbook's form-typed curl), and the core's refusals
map to 400 / 401 / 404 / 422 / 503. The full app on real Postgres and Redis: tests/integration/flags/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.flags import api
from services.flags.memory import MemoryCache, MemoryRepository
from services.flags.models import FlagCreate
from services.flags.service import FlagService
from shared.auth import AuthSettings, Authenticator

ADMIN = {"Authorization": "Bearer edge-admin-token"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def edge() -> AsyncIterator[tuple[httpx.AsyncClient, FlagService]]:
    svc = FlagService(repo=MemoryRepository(), cache=MemoryCache(), store_timeout_s=0.5)
    await svc.load()
    await svc.create(FlagCreate.model_validate({"key": "f", "state": "ENABLED"}), actor="admin:t")
    app = FastAPI()
    app.state.flags = svc
    api.install(app, auth=Authenticator(AuthSettings(env="local", admin_token=SecretStr("edge-admin-token"))))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))  # not loopback: the token is needed
    async with httpx.AsyncClient(transport=transport, base_url="http://flags") as client:
        yield client, svc


async def test_credentials_are_checked_before_the_body(edge: tuple[httpx.AsyncClient, FlagService]) -> None:
    client, svc = edge
    r = await client.post("/api/flags/f/kill", content=b"{not json")
    assert r.status_code == 401, r.text
    r = await client.post("/api/flags/f/kill", content=b"{not json", headers=ADMIN)
    assert r.status_code == 400 and r.json()["errorCode"] == "BAD_REQUEST"
    assert svc.get("f").definition["state"] == "ENABLED"  # type: ignore[union-attr]


async def test_a_form_typed_json_body_is_read(edge: tuple[httpx.AsyncClient, FlagService]) -> None:
    client, svc = edge
    r = await client.post("/api/flags/f/kill", content=b'{"reason": "runbook"}', headers={**ADMIN, **FORM})
    assert r.status_code == 200 and r.json()["killed"] is True, r.text
    assert (await svc.audit("f", limit=1, before_id=None))[0].reason == "runbook"
    r = await client.post("/api/flags/f/enable", headers=ADMIN)  # an empty body stands for no reason
    assert r.status_code == 200 and r.json()["state"] == "ENABLED"


async def test_the_cores_refusals_map_to_http(edge: tuple[httpx.AsyncClient, FlagService]) -> None:
    client, svc = edge
    r = await client.post("/api/flags/nope/kill", headers=ADMIN)
    assert r.status_code == 404 and r.json() == {"errorCode": "FLAG_NOT_FOUND", "detail": "flag 'nope' not found",
                                                 "key": "nope"}
    r = await client.post("/api/flags/f/rollout", json={"percent": 101}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["errorCode"] == "INVALID_BODY"
    r = await client.post("/api/flags", json={"key": "f"}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["errorCode"] == "CONFLICT"
    assert isinstance(svc.repo, MemoryRepository)
    svc.repo.down = True  # and no kill journal: a kill needs the store
    r = await client.post("/api/flags/f/kill", headers=ADMIN)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5" and r.json()["errorCode"] == "UNAVAILABLE"
