"""A page's acknowledge link and the post-incident report in a real browser (Debian's Chromium through
Playwright): a notifier of the test's own (this checkout's code, uvicorn on a free port, the stack's Postgres in
a schema of its own) opens an incident by hand and pages the on-call; the link shows a confirm page, its button
acknowledges, the link is spent afterwards; once resolved, the report renders as HTML."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.settings import DEFAULT_ONCALL, NotifierSettings, SubscriptionSettings
from shared.auth import AuthSettings
from shared.settings import PostgresSettings, RedisSettings
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG
from tests.e2e.browser import CHROMIUM

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs"
TOKEN = "e2e-oncall-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "X-Safeguard-Actor": "e2e"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def notifier(postgres_dsn: str, redis_url: str) -> AsyncIterator[str]:
    schema, port = f"notifier_e2e_{uuid4().hex[:8]}", _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = NotifierSettings(policy_file=CONFIG, db_schema=schema,
                                auth=AuthSettings(admin_token=SecretStr(TOKEN), env="test"),
                                postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)),
                                redis=RedisSettings(url=SecretStr(redis_url)),
                                subscriptions=SubscriptionSettings(public_url=base), oncall_file=DEFAULT_ONCALL)
    app = create_app(settings, publisher=InMemoryPublisher(), consume=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "the notifier did not start"
        yield base
    finally:
        server.should_exit = True
        await task
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def _paged(http: httpx.AsyncClient) -> tuple[str, str]:
    r = await http.post("/api/incidents", headers=ADMIN, json={"service": "checkout", "title": "payments fail",
                                                               "severity": "critical", "page": True})
    assert r.status_code == 201, r.text
    iid = r.json()["incident_id"]
    notes = (await http.get(f"/api/incidents/{iid}/deliveries", headers=ADMIN)).json()
    [page] = [n["message"] for n in notes if n["channel"] == "oncall_page"]
    link = re.search(r"Acknowledge: (\S+)$", page)
    assert link is not None, page
    return iid, link.group(1)


async def test_ack_link_confirm_page_then_report_in_chromium(notifier: str) -> None:
    from playwright.async_api import async_playwright

    assert os.path.exists(CHROMIUM), f"no {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    async with httpx.AsyncClient(base_url=notifier, timeout=10) as http:
        iid, link = await _paged(http)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 800, "height": 500})
                shown = await page.goto(link)
                assert shown is not None and shown.status == 200
                assert await page.locator("h1").inner_text() == "Acknowledge this incident?"
                assert (await http.get(f"/api/incidents/{iid}", headers=ADMIN)).json()["acknowledged_by"] is None
                button = page.get_by_role("button", name=re.compile(r"^Acknowledge as "))
                person = (await button.inner_text()).removeprefix("Acknowledge as ")
                await page.screenshot(path=str(DOCS / "oncall-ack.png"))
                await button.click()
                await page.wait_for_load_state()
                assert await page.locator("h1").inner_text() == "Acknowledged"
                inc = (await http.get(f"/api/incidents/{iid}", headers=ADMIN)).json()
                assert inc["acknowledged_by"] == f"{person} (page link)"
                again = await page.goto(link)
                assert again is not None and again.status == 409
                assert await page.locator("h1").inner_text() == "This link was already used"

                assert (await http.post(f"/api/incidents/{iid}/resolve", headers=ADMIN,
                                        json={"note": "payment provider fixed"})).status_code == 200
                report = await browser.new_page(viewport={"width": 1000, "height": 1400},
                                                extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
                shown = await report.goto(f"{notifier}/api/incidents/{iid}/report.html")
                assert shown is not None and shown.status == 200
                assert (await report.locator("h1").inner_text()).startswith("Post-incident report: checkout")
                headings = await report.locator("h2").all_inner_texts()
                assert {"Summary", "Impact", "Timeline", "Recovery time against the runbook", "Root cause",
                        "Action items"} <= set(headings)
                row = report.locator("tr", has_text="Time to resolve")
                assert await row.is_visible() and "1h 00m 00s" in await row.inner_text()
                await report.screenshot(path=str(DOCS / "incident-report.png"), full_page=True)
            finally:
                await browser.close()
