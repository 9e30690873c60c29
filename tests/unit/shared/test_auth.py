"""shared.auth: admin token, client keys, trusted loopback (and a forged X-Forwarded-For)."""

from __future__ import annotations

import httpx
from fastapi import Depends, FastAPI
from pydantic import SecretStr

from shared.auth import Authenticator, AuthSettings


def _app(settings: AuthSettings) -> FastAPI:
    auth = Authenticator(settings)
    app = FastAPI()

    @app.post("/admin")
    async def admin(actor: str = Depends(auth.require_admin)) -> dict[str, str]:
        return {"actor": actor}

    @app.post("/runbook")
    async def runbook(actor: str = Depends(auth.require_admin_or_loopback)) -> dict[str, str]:
        return {"actor": actor}

    @app.get("/read")
    async def read(actor: str = Depends(auth.require_reader)) -> dict[str, str]:
        return {"actor": actor}

    return app


def _client(app: FastAPI, peer: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(peer, 1)), base_url="http://t")


LOCAL = AuthSettings(env="local", admin_token=SecretStr("s3cret"), client_keys={"demo": SecretStr("k1")})
PROD = AuthSettings(env="production", admin_token=SecretStr("s3cret"))


async def test_admin_needs_the_token() -> None:
    async with _client(_app(LOCAL), "127.0.0.1") as c:
        assert (await c.post("/admin")).status_code == 401
        assert (await c.post("/admin", headers={"Authorization": "Bearer nope"})).status_code == 401
        ok = await c.post("/admin", headers={"Authorization": "Bearer s3cret", "X-Safeguard-Actor": "alice<x>"})
    assert ok.json() == {"actor": "admin:alicex"}


async def test_no_admin_token_configured_means_nobody_is_admin() -> None:
    async with _client(_app(AuthSettings(env="local")), "127.0.0.1") as c:
        assert (await c.post("/admin", headers={"Authorization": "Bearer "})).status_code == 401


async def test_loopback_trusted_only_in_local_env() -> None:
    async with _client(_app(LOCAL), "127.0.0.1") as c:
        assert (await c.post("/runbook")).json() == {"actor": "loopback:127.0.0.1"}
    async with _client(_app(PROD), "127.0.0.1") as c:
        assert (await c.post("/runbook")).status_code == 401
        assert (await c.post("/runbook", headers={"Authorization": "Bearer s3cret"})).status_code == 200


async def test_explicit_setting_overrides_env() -> None:
    settings = AuthSettings(env="production", trust_loopback=True)
    async with _client(_app(settings), "::1") as c:
        assert (await c.post("/runbook")).status_code == 200


async def test_remote_client_behind_proxy_is_not_loopback() -> None:
    async with _client(_app(LOCAL), "127.0.0.1") as proxy:
        r = await proxy.post("/runbook", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.9"})
        assert r.status_code == 401
        assert (await proxy.post("/runbook", headers={"X-Forwarded-For": "127.0.0.1"})).status_code == 200
    async with _client(_app(LOCAL), "203.0.113.9") as remote:
        assert (await remote.post("/runbook", headers={"X-Forwarded-For": "127.0.0.1"})).status_code == 401


async def test_reader_keys() -> None:
    async with _client(_app(LOCAL), "127.0.0.1") as c:
        assert (await c.get("/read")).status_code == 401
        assert (await c.get("/read", headers={"X-API-Key": "k1"})).json() == {"actor": "client:demo"}
        assert (await c.get("/read", headers={"Authorization": "Bearer s3cret"})).json() == {"actor": "admin"}
    async with _client(_app(PROD), "127.0.0.1") as open_reads:
        assert (await open_reads.get("/read")).json() == {"actor": "anonymous"}
