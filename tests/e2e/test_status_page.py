"""The status page in a real browser (Debian's Chromium through Playwright) on the running native stack:
components from the health service, an incident with its timeline, and the Atom feed, through :3000.

The incident is a rolled-back deploy of a service of the test's own (`deploy.events`, which only the notifier
reads), so no recovery action runs and no flag changes; the test resolves it with the admin token afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from uuid import uuid4

import feedparser  # type: ignore[import-untyped]
import httpx
import pytest

from services.notifier.status_components import LABEL
from shared.events import DeploymentRolledBack
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
from tests.e2e.browser import CHROMIUM
from tests.e2e.test_runbook_loop import FRONT, admin_token

pytestmark = pytest.mark.e2e

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "status-page.png"


async def _open_incident(http: httpx.AsyncClient, service: str) -> str:
    async with KafkaPublisher.start(KafkaSettings(), source="/safeguard/e2e-status") as pub:
        await pub.publish(DeploymentRolledBack(service=service, deploy_id=f"d-{service}", version="2.0.0", colour="blue",
                                               from_colour="green", reason="e2e: error rate 15.7 % > 5 % on the canary",
                                               healthy=False))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = (await http.get("/status.json")).json()
        found = [i["incident_id"] for i in body["open"] if i["service"] == service]
        if found:
            return str(found[0])
        await asyncio.sleep(0.5)
    raise AssertionError(f"no open incident of {service} on /status.json after 30 s")


async def test_status_page_in_chromium_shows_components_and_an_incident() -> None:
    from playwright.async_api import async_playwright

    assert os.path.exists(CHROMIUM), f"no {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    service = f"e2e-status-{uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=FRONT, timeout=10) as http:
        components = {c["name"]: c for c in (await http.get("/status.json")).json()["components"]}
        assert {"flags", "postgres", "redis", "kafka"} <= components.keys(), sorted(components)
        iid = await _open_incident(http, service)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                try:
                    page = await browser.new_page(viewport={"width": 900, "height": 1400})
                    shown = await page.goto(f"{FRONT}/status")
                    assert shown is not None and shown.status == 200
                    for group in ("Safeguard", "Dependencies"):
                        assert await page.get_by_role("heading", name=group, exact=True).is_visible()
                    for name in ("flags", "postgres", "kafka"):
                        assert await page.locator(f"#component-{name} .state").inner_text() in LABEL.values()
                        assert await page.locator(f"#component-{name} ol.bars, #component-{name} p.note").count() >= 1
                    incident = page.locator(f"#incident-{iid}")
                    assert await incident.is_visible()
                    assert "deploy 2.0.0 rolled back" in await incident.locator("h3").inner_text()
                    assert "e2e: error rate 15.7 %" in await incident.locator("ol.timeline").inner_text()
                    assert await page.locator(f"#component-{service} .state").inner_text() == "Degraded performance"
                    await page.screenshot(path=str(SCREENSHOT))  # the first screen: banner, open incidents, components
                finally:
                    await browser.close()
            feed = feedparser.parse((await http.get("/status/feed.atom")).content)
            assert not feed.bozo and f"tag:safeguard.local,2026:incident/{iid}" in {e.id for e in feed.entries}
        finally:
            r = await http.post(f"/api/incidents/{iid}/resolve", json={"note": "e2e status page test done"},
                                headers={"Authorization": f"Bearer {admin_token()}"})
            assert r.status_code == 200, r.text
