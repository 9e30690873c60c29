"""The console in-process on the REAL running services (the native stack's flags and health, CONSOLE_*_URL),
signed in as a test operator. Flags are private to each test (`console-t<unique>-...`) and deleted after;
no test here touches another test's flag or `gamification`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings

ROOT = Path(__file__).resolve().parents[3]


def admin_token() -> str:
    token = os.environ.get("SAFEGUARD_ADMIN_TOKEN", "")
    path = ROOT / ".stack" / "admin-token"
    if not token and path.exists():
        token = path.read_text().strip()
    if not token:
        pytest.fail("no admin token: load .stack/env or run `make up` (writes .stack/admin-token)")
    return token


@dataclass
class Console:
    client: httpx.AsyncClient  # the console, signed in
    flags: httpx.AsyncClient  # the flags service itself, with the admin token
    operator: str
    csrf: str
    prefix: str

    def htmx(self, target: str, **extra: str) -> dict[str, str]:
        return {"HX-Request": "true", "HX-Target": target, "X-CSRF-Token": self.csrf, **extra}


async def sign_in(client: httpx.AsyncClient, *, token: str, name: str) -> str:
    """Signs in through the login form; returns the session's CSRF token."""
    r = await client.post("/console/login", data={"token": token, "name": name, "next": "/console/flags"})
    assert r.status_code == 303, r.text
    page = (await client.get("/console/flags", params={"q": "-"})).text
    return page.split('"X-CSRF-Token": "')[1].split('"')[0]


@pytest.fixture
async def console(unique: str) -> AsyncIterator[Console]:
    settings = ConsoleSettings()
    token = admin_token()
    try:
        httpx.get(f"{settings.flags_url}/readyz", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the flags service at {settings.flags_url} does not answer ({exc!r}): run `make up`")
    app = create_app(settings, auth=AuthSettings(env="local", admin_token=SecretStr(token)))
    operator = f"c1-{unique}"
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client, \
            httpx.AsyncClient(base_url=settings.flags_url, headers={"Authorization": f"Bearer {token}"},
                              timeout=10) as flags:
        csrf = await sign_in(client, token=token, name=operator)
        made = Console(client=client, flags=flags, operator=operator, csrf=csrf, prefix=f"console-t{unique}-")
        try:
            yield made
        finally:
            for f in (await flags.get("/api/flags")).json():
                if f["key"].startswith(made.prefix):
                    await flags.delete(f"/api/flags/{f['key']}", params={"reason": "console test done"})


@pytest.fixture
def make_flag(console: Console) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def make(name: str, **body: Any) -> dict[str, Any]:
        r = await console.flags.post("/api/flags", json={"key": console.prefix + name, "reason": "console test", **body})
        assert r.status_code == 201, r.text
        flag: dict[str, Any] = r.json()
        return flag
    return make
