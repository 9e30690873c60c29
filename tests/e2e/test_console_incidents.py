"""The console's Incidents, SLA and Recovery pages in a real browser (Debian's Chromium through Playwright) on
the running native stack, through :3000: sign in, see an incident of the test's own and acknowledge it (the
notifier records `admin:<name>`), open the SLA page of a service of the test's own and see its charts drawn,
and the Recovery page. Screenshots go to docs/console-{incidents,sla,recovery}.png and the test artefacts.

The incident is a rolled-back deploy of the private service (`deploy.events`, read only by the notifier: no
recovery action, no flag change); its telemetry stays under every threshold (no trigger fires); the incident
is resolved afterwards. Recovery is not paused here (tests/integration/recovery/test_pause.py does that on a
private instance), so the shared stack's recovery keeps acting for the other tests."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from shared.events import DeploymentRolledBack, ProcessStatsReported, RequestsObserved
from shared.histogram import LatencySketch
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
from tests.e2e.test_runbook_loop import FRONT, ROOT, admin_token

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
OPERATOR = "e2e-c2"
ARTEFACTS = Path(os.environ.get("E2E_ARTEFACTS", ROOT / ".stack" / "artefacts"))


async def _shot(page: object, name: str) -> None:
    """docs/console-<name>.png and the same in the test artefacts."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for folder in (ARTEFACTS, ROOT / "docs"):
        await page.screenshot(path=str(folder / f"console-{name}.png"))  # type: ignore[attr-defined]


async def _publish(service: str) -> None:
    """A rolled-back deploy (the incident); 30 min of requests, 20 s a report, with a bump of 3 % errors and one
    of 900 ms responses (under every trigger threshold: nothing fires but the budget's burn alert, which acts on
    nothing); memory at 61 %."""
    now = datetime.now(UTC)
    fast, slow = LatencySketch.of([40.0] * 60), LatencySketch.of([900.0] * 60)
    async with KafkaPublisher.start(KafkaSettings(), source="/safeguard/e2e-console") as pub:
        await pub.publish(DeploymentRolledBack(
            service=service, deploy_id=f"d-{service}", version="2.0.0", colour="blue", from_colour="green",
            reason="e2e: error rate 15.7 % > 5 % on the canary", healthy=False))
        for s in range(1800, 0, -20):
            sketch = slow if 600 < s <= 780 else fast
            await pub.publish(RequestsObserved(
                service=service, instance=f"{service}-1", window_start=now - timedelta(seconds=s), window_seconds=20,
                count=60, errors=2 if 1200 < s <= 1440 else 0, latency_sum_ms=sketch.total_ms,
                latency_buckets=sketch.to_wire()))
        for s in (6, 4, 2, 0):
            await pub.publish(ProcessStatsReported(
                time=now - timedelta(seconds=s), service=service, instance=f"{service}-1", pid=4242,
                rss_bytes=600_000_000, memory_limit_bytes=1_000_000_000, memory_percent=61.0))


async def _until(what: str, probe: object, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()  # type: ignore[operator]
        if found:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} not seen within {timeout:g} s")


async def test_incident_acknowledged_sla_charts_and_recovery_in_chromium() -> None:
    from playwright.async_api import async_playwright, expect

    assert os.path.exists(CHROMIUM), f"no {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    service = f"e2e-console-{uuid4().hex[:6]}"
    auth = {"Authorization": f"Bearer {admin_token()}"}
    async with httpx.AsyncClient(base_url=FRONT, timeout=10, limits=httpx.Limits(keepalive_expiry=2.0)) as http:
        assert (await http.get("/console/login")).status_code == 200, "the console does not answer: run `make up`"
        await _publish(service)

        async def incident() -> str | None:
            found = [i for i in (await http.get("/api/incidents", headers=auth)).json() if i["service"] == service]
            return found[0]["incident_id"] if found else None

        async def charted() -> bool:
            r = await http.get(f"/console/sla/{service}/series.json?hours=1")
            return r.status_code == 200 and bool(r.json()["minutes"]["t"]) and bool(r.json()["memory"])

        iid = str(await _until("the incident", incident))
        try:
            await _until("the service's series with memory", charted)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                try:
                    page = await browser.new_page(viewport={"width": 1280, "height": 1100})
                    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
                    await page.goto(f"{FRONT}/console/login?next=/console/incidents")
                    await page.fill("input[name=name]", OPERATOR)
                    await page.fill("input[name=token]", admin_token())
                    await page.click("button[type=submit]")
                    await expect(page.locator("header .session")).to_contain_text(OPERATOR)

                    # the list, open first, and the incident's page: timeline, ladder, acknowledge
                    row = page.locator(f"a[href='/console/incidents/{iid}']")
                    await expect(row).to_contain_text(f"{service}: deploy 2.0.0 rolled back")
                    await row.click()
                    await expect(page.locator("#incident-status")).to_have_text("open")
                    await expect(page.locator("table.timeline")).to_contain_text("e2e: error rate 15.7 % > 5 %")
                    await expect(page.locator("ol.ladder li.current")).to_contain_text("L1")
                    await page.click("#acknowledge")
                    await expect(page.locator(".flash.ok")).to_contain_text("Acknowledged")
                    await expect(page.locator("#acknowledged-by")).to_have_text(f"admin:{OPERATOR}")
                    await expect(page.locator("tr.kind-acknowledged")).to_contain_text(f"admin:{OPERATOR}")
                    shown = (await http.get(f"/api/incidents/{iid}", headers=auth)).json()
                    assert shown["acknowledged_by"] == f"admin:{OPERATOR}"
                    if shown.get("trace_id"):
                        assert shown["trace_id"] in (await page.locator("#open-trace").get_attribute("href") or "")
                    await _shot(page, "incidents")

                    # the SLA page of the test's service: five charts drawn (canvases), the numbers in words
                    await page.goto(f"{FRONT}/console/sla?service={service}&hours=1")
                    await page.wait_for_function("() => document.body.dataset.chartsDrawn === '5'", timeout=10_000)
                    for chart in ("errors", "latency", "memory", "burn", "budget"):
                        assert await page.locator(f"#chart-{chart} canvas").count() >= 1, chart
                    await expect(page.locator("#chart-errors")).to_contain_text("trigger 5.0 %")
                    await expect(page.locator("ul.states")).to_contain_text("memory (highest instance): 61 %")
                    await _shot(page, "sla")

                    await page.click("nav >> text=Recovery")
                    await expect(page.locator("#pause-state h2")).to_have_text("Automatic recovery")
                    await expect(page.locator("table.recovery")).to_be_visible()
                    await _shot(page, "recovery")
                finally:
                    await browser.close()
        finally:
            r = await http.post(f"/api/incidents/{iid}/resolve", json={"note": "e2e console test done"}, headers=auth)
            assert r.status_code in (200, 409), r.text
