"""Console sign-in: the admin token makes a signed session cookie (never the token itself);
changes need the session's CSRF token; anonymous reading only in local mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends
from pydantic import SecretStr

from services.console.app import create_app
from services.console.auth import COOKIE, Session, checked_operator
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings

TOKEN = "t0ken-for-tests-0123456789"


def app_for(env: str = "local"):  # type: ignore[no-untyped-def]
    app = create_app(ConsoleSettings(), auth=AuthSettings(env=env, admin_token=SecretStr(TOKEN)),  # type: ignore[arg-type]
                     backends=object())  # type: ignore[arg-type]

    @app.post("/console/_probe")
    async def probe(who: Annotated[Session, Depends(checked_operator)]) -> dict[str, str]:
        return {"actor": who.actor}
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = app_for()
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        yield c


async def sign_in(c: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    return await c.post("/console/login", data={"token": token, "name": "alice", "next": "/console/flags"})


async def test_a_wrong_token_is_refused_and_sets_no_cookie(client: httpx.AsyncClient) -> None:
    r = await sign_in(client, "nope")
    assert r.status_code == 401 and "not the admin token" in r.text
    assert COOKIE not in r.cookies


async def test_the_admin_token_signs_in_and_the_cookie_does_not_carry_it(client: httpx.AsyncClient) -> None:
    r = await sign_in(client)
    assert r.status_code == 303 and r.headers["location"] == "/console/flags"
    cookie = r.cookies[COOKIE]
    assert TOKEN not in cookie and "HttpOnly" in r.headers["set-cookie"] and "SameSite=strict" in r.headers["set-cookie"]
    page = await client.get("/console")
    assert "alice" in page.text and "Sign out" in page.text


async def test_a_change_needs_the_session_csrf_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/console/_probe", data={"csrf": "x"})).status_code == 401  # not signed in
    await sign_in(client)
    assert (await client.post("/console/_probe", data={})).status_code == 403
    assert (await client.post("/console/_probe", data={"csrf": "forged"})).status_code == 403
    page = (await client.get("/console")).text
    csrf = page.split('"X-CSRF-Token": "')[1].split('"')[0]
    r = await client.post("/console/_probe", data={"csrf": csrf})
    assert r.status_code == 200 and r.json() == {"actor": "admin:alice"}
    assert (await client.post("/console/_probe", headers={"X-CSRF-Token": csrf})).json() == {"actor": "admin:alice"}


async def test_a_tampered_cookie_is_no_session(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    client.cookies.set(COOKIE, client.cookies[COOKIE][:-2] + "xx", path="/console")
    assert "read-only" in (await client.get("/console")).text


async def test_outside_local_mode_reading_needs_a_session() -> None:
    app = app_for(env="production")
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        assert (await c.get("/console")).status_code == 401
        await sign_in(c)
        assert (await c.get("/console")).status_code == 200


async def test_the_login_redirect_stays_inside_the_console(client: httpx.AsyncClient) -> None:
    r = await client.post("/console/login", data={"token": TOKEN, "name": "a", "next": "//evil.example/x"})
    assert r.headers["location"] == "/console"
