"""Scheduled maintenance on the status page in a real browser (Debian's Chromium through Playwright): a notifier
of the test's own (this checkout's code, served by uvicorn on a free port, the stack's Postgres in a schema of
its own) gets two windows through its API; the page shows them and the component "under maintenance"."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.settings import PostgresSettings, RedisSettings
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG
from tests.e2e.browser import CHROMIUM

pytestmark = pytest.mark.e2e

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "status-page-maintenance.png"
TOKEN = "e2e-maintenance-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def notifier(postgres_dsn: str, redis_url: str) -> AsyncIterator[str]:
    schema, port = f"notifier_e2e_{uuid4().hex[:8]}", _free_port()
    settings = NotifierSettings(policy_file=CONFIG, db_schema=schema,
                                auth=AuthSettings(admin_token=SecretStr(TOKEN), env="test"),
                                postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)),
                                redis=RedisSettings(url=SecretStr(redis_url)))
    app = create_app(settings, publisher=InMemoryPublisher(), consume=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "the notifier did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_the_status_page_shows_scheduled_maintenance_in_chromium(notifier: str) -> None:
    from playwright.async_api import async_playwright

    assert os.path.exists(CHROMIUM), f"no {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    now = datetime.now(UTC)
    admin = {"Authorization": f"Bearer {TOKEN}", "X-Safeguard-Actor": "e2e"}
    async with httpx.AsyncClient(base_url=notifier, timeout=10) as http:
        # forced: these tests run at any hour, and a window inside business hours is refused unless forced
        running = await http.post("/api/maintenance?force=true", headers=admin, json={
            "title": "Database failover drill", "components": ["demo"], "ends_at": (now + timedelta(hours=1)).isoformat(),
            "description": "The demo may answer 503 for a few seconds."})
        later = await http.post("/api/maintenance?force=true", headers=admin, json={
            "title": "Redis 8 upgrade", "components": ["redis"], "starts_at": (now + timedelta(days=2)).isoformat(),
            "ends_at": (now + timedelta(days=2, hours=2)).isoformat()})
        assert running.status_code == 201 and later.status_code == 201, (running.text, later.text)
        ids = running.json()["window"]["window_id"], later.json()["window"]["window_id"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 1400})
            shown = await page.goto(f"{notifier}/status")
            assert shown is not None and shown.status == 200
            section = page.get_by_role("region", name="Scheduled maintenance")
            assert await section.is_visible()
            first, second = page.locator(f"#maintenance-{ids[0]}"), page.locator(f"#maintenance-{ids[1]}")
            assert await first.locator("h3").inner_text() == "Database failover drill"
            assert "In progress" in await first.inner_text() and "affects demo" in await first.inner_text()
            assert "Scheduled" in await second.inner_text() and "affects redis" in await second.inner_text()
            state = page.locator("#component-demo .state")
            assert await state.inner_text() == "Under maintenance"
            colour = await state.evaluate("e => getComputedStyle(e).color")
            assert colour == "rgb(9, 105, 218)", colour  # the page's maintenance blue
            assert await page.locator("p.banner").inner_text() == "Under maintenance"
            assert await page.get_by_role("button", name="Subscribe").is_visible()
            await page.screenshot(path=str(SCREENSHOT))
        finally:
            await browser.close()
