"""The overview on the REAL health service: the page, and the SSE stream served by uvicorn (a real HTTP
stream, as a browser gets it) from ONE poller shared by every open browser."""

from __future__ import annotations

import asyncio
import html
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from services.console.app import create_app
from services.console.pages.overview import POLL_S, overview_feed
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings
from tests.integration.console.conftest import admin_token


def _health_status(settings: ConsoleSettings) -> dict[str, object]:
    try:
        r = httpx.get(f"{settings.health_url}/api/system/status", timeout=5)
        r.raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the health service at {settings.health_url} does not answer ({exc!r}): run `make up`")
    body: dict[str, object] = r.json()
    return body


@pytest.fixture
def served() -> Iterator[tuple[FastAPI, str]]:
    settings = ConsoleSettings()
    _health_status(settings)
    app = create_app(settings, auth=AuthSettings(env="local", admin_token=SecretStr(admin_token())))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the console did not start"
        time.sleep(0.05)
    try:
        yield app, url
    finally:
        server.should_exit = True
        thread.join(10)


async def test_the_page_shows_what_health_reports() -> None:
    settings = ConsoleSettings()
    status = _health_status(settings)
    app = create_app(settings, auth=AuthSettings(env="local", admin_token=SecretStr(admin_token())))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        r = await c.get("/console")
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert 'sse-connect="/console/overview/stream"' in page
    for section in ("Services", "Dependencies", "Circuit breakers", "Active triggers", "Open incidents", "App instances",
                    "Error budget left"):
        assert f">{section}</h" in page, section
    for name in [*status["services"], *status["dependencies"]]:  # type: ignore[misc]
        assert f"<b>{name}</b>" in page, name


async def _first_event(client: httpx.AsyncClient, url: str, got: asyncio.Queue[str]) -> None:
    async with client.stream("GET", f"{url}/console/overview/stream") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event: list[str] = []
        async for line in r.aiter_lines():
            if line:
                event.append(line)
                continue
            if any(x == "event: overview" for x in event):
                await got.put("\n".join(x.removeprefix("data: ") for x in event if x.startswith("data: ")))
            event = []


async def test_two_browsers_share_one_poller_over_a_real_stream(served: tuple[FastAPI, str]) -> None:
    app, url = served
    got: asyncio.Queue[str] = asyncio.Queue()
    async with httpx.AsyncClient(timeout=10) as client:
        browsers = [asyncio.create_task(_first_event(client, url, got)) for _ in range(2)]
        try:
            first = [await asyncio.wait_for(got.get(), 10) for _ in range(2)]
            assert all('id="overall"' in f and "Services" in f for f in first), first[0][:300]
            feed = overview_feed(app)
            assert feed.listeners == 2
            polls, t0 = feed.polls, time.monotonic()
            await asyncio.sleep(4 * POLL_S)
            elapsed = time.monotonic() - t0
            # one poller: about one poll per interval, not one per browser
            assert feed.polls - polls <= elapsed / POLL_S + 1, (feed.polls - polls, elapsed)
        finally:
            for b in browsers:
                b.cancel()
            await asyncio.gather(*browsers, return_exceptions=True)
    deadline = time.monotonic() + 5
    while overview_feed(app).listeners and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert overview_feed(app).listeners == 0  # the browsers left: the poller stops with the last one
