"""The runbook loop against the Node demo (examples/demo-node) on the running native stack.

The Node app holds no Safeguard code: its flags come from the flags service over flagd's sync gRPC
(the OpenFeature flagd provider, in-process), its request metrics go out as OpenTelemetry (OTLP) to the
intake, which publishes `RequestsObserved` for the SLA processor. Its page posts a web-vitals beacon
to the front door's /api/beacon -> `PageLoadObserved`.

Every test is bounded, talks to loopback only, and puts back what it changed (faults removed on
both colours, `gamification` in the state it was found in).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.events import PageLoadObserved, TriggerCleared, TriggerFired
from shared.testing.kafka import expect_events
from shared.topics import TELEMETRY_PAGELOADS
from tests.e2e.browser import CHROMIUM
from tests.e2e.test_runbook_loop import (
    BOOTSTRAP, FLAG, FRONT, _restore_flag, admin_token, runbook_step_1, until_status, watch_triggers,
)

pytestmark = pytest.mark.e2e

NODE = f"http://127.0.0.1:{os.environ.get('NODE_DEMO_PORT', '8200')}"
COLOURS = {
    "blue": f"http://127.0.0.1:{os.environ.get('NODE_BLUE_PORT', '8201')}",
    "green": f"http://127.0.0.1:{os.environ.get('NODE_GREEN_PORT', '8202')}",
}
SERVICE = "demo-node"  # the app's OpenTelemetry service.name
LEADERBOARD = "/api/gamification/leaderboard?user=e2e-node"
PAGELOADS_TOPIC = os.environ.get("SAFEGUARD_STACK_TOPIC_PREFIX", "") + TELEMETRY_PAGELOADS


@pytest.fixture(scope="module")
def node_stack() -> None:
    """The front door and both Node colours must answer, on the flagd in-process provider: never a skip."""
    for url in (f"{FRONT}/api/flags/{FLAG}", f"{NODE}/healthz", *(f"{u}/healthz" for u in COLOURS.values())):
        try:
            httpx.get(url, timeout=3).raise_for_status()
        except httpx.HTTPError as exc:
            pytest.fail(f"{url} does not answer ({exc!r}); run `make up`")
    for url in COLOURS.values():
        flags = httpx.get(f"{url}/healthz", timeout=3).json()["flags"]
        assert flags == {"provider": "flagd", "status": "READY"}, f"{url}: flags provider {flags}"


def _client() -> httpx.AsyncClient:
    """Idle connections expire well before HAProxy closes them: with HAProxy's `timeout http-keep-alive` at 5 s,
    httpx's default expiry (also 5 s) let a request go out on a connection HAProxy was closing ("Server
    disconnected", seen once in CI while the test waited for recovery between two bursts of traffic). HAProxy
    keeps them 15 s now (tests/integration/shared/test_front_door_reuse.py); the short expiry stays."""
    return httpx.AsyncClient(timeout=5, limits=httpx.Limits(keepalive_expiry=2.0))


async def _until_status(http: httpx.AsyncClient, path: str, status: int, *, timeout: float) -> float:
    """Seconds until the Node app (through HAProxy) answers `status` on `path`."""
    return await until_status(http, path, status, timeout=timeout, base=NODE, every_s=0.02)


async def _flag_call(http: httpx.AsyncClient, verb: str, reason: str) -> None:
    r = await http.post(f"{FRONT}/api/flags/{FLAG}/{verb}", headers={"Authorization": f"Bearer {admin_token()}"},
                        json={"reason": reason})
    assert r.status_code == 200, r.text


async def _faults(http: httpx.AsyncClient, method: str, **faults: Any) -> None:
    for url in COLOURS.values():
        r = await http.request(method, f"{url}/api/faults", json=faults or None)
        assert r.status_code == 200, r.text
        if faults:
            assert r.json()["error_rate"] == faults["error_rate"], r.text


async def _sla(http: httpx.AsyncClient) -> dict[str, Any]:
    r = await http.get(f"{FRONT}/api/sla/{SERVICE}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# ------------------------------------------------------------------ 1. the flag, streamed to the Node app


async def test_gamification_on_by_api_then_off_by_the_runbook_curl(node_stack: None) -> None:
    async with _client() as http:
        found = (await http.get(f"{FRONT}/api/flags/{FLAG}")).json()
        auth = {"Authorization": f"Bearer {admin_token()}"}
        try:
            if found["state"] == "ENABLED" or found["killed"]:  # start from off, so "on" below is our doing
                await _flag_call(http, "disable", "e2e node")
            await _until_status(http, LEADERBOARD, 404, timeout=2.0)
            await _flag_call(http, "enable", "e2e node demo")
            on_after = await _until_status(http, LEADERBOARD, 200, timeout=2.0)
            body = (await http.get(f"{NODE}{LEADERBOARD}")).json()
            assert body["leaders"], body
            assert (await http.get(f"{NODE}/?user=e2e-node")).json()["gamification"] is True

            await runbook_step_1()
            off_after = await _until_status(http, LEADERBOARD, 404, timeout=2.0)
            print(f"\nnode gamification: on seen {on_after * 1000:.0f} ms after the enable call returned, "
                  f"off {off_after * 1000:.0f} ms after the runbook curl returned")
            assert on_after < 1.0 and off_after < 1.0, (on_after, off_after)
        finally:
            await _restore_flag(http, found, auth)


# ------------------------------------------------------------------ 2. fault -> trigger -> kill -> off


@dataclass
class Traffic:
    """Steady, bounded traffic to the Node app through HAProxy :8200."""

    http: httpx.AsyncClient
    rps: float = 40.0
    budget: int = 2000
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    _next: float = 0.0

    async def tick(self) -> None:
        now = time.monotonic()
        self._next = self._next or now
        due: list[Awaitable[httpx.Response]] = []
        while self._next <= now and self.sent + len(due) < self.budget:
            due.append(self.http.get(f"{NODE}/"))
            self._next += 1 / self.rps
        if not due and self.sent >= self.budget:
            raise AssertionError(f"traffic budget of {self.budget} requests spent")
        self.sent += len(due)
        for r in await asyncio.gather(*due):
            self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1


async def _recovery_action(http: httpx.AsyncClient, episode_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = await http.get(f"{FRONT}/api/recovery/actions", params={"service": SERVICE, "limit": 200})
        assert r.status_code == 200, r.text
        found = [a for a in r.json() if a["episode_id"] == episode_id]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, f"recovery recorded no action for episode {episode_id}"
        await asyncio.sleep(0.2)


async def _wait_trigger_ok(http: httpx.AsyncClient, traffic: Traffic, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (await _sla(http)).get("triggers", {}).get("error_rate_high", {}).get("active"):
        assert time.monotonic() < deadline, f"error_rate_high of {SERVICE} still active after {timeout}s"
        await traffic.tick()
        await asyncio.sleep(0.1)


async def test_fault_in_the_node_app_fires_the_trigger_and_recovery_turns_the_feature_off(node_stack: None) -> None:
    async with _client() as http:
        found = (await http.get(f"{FRONT}/api/flags/{FLAG}")).json()
        traffic = Traffic(http)
        try:
            await _faults(http, "DELETE")
            await _wait_trigger_ok(http, traffic, timeout=30)
            await _flag_call(http, "enable", "e2e node runbook loop")
            await _until_status(http, LEADERBOARD, 200, timeout=2.0)
            async with watch_triggers(SERVICE) as watch:
                await _faults(http, "PUT", error_rate=0.3)
                t0 = time.monotonic()
                await watch.until(lambda: bool(watch.of("error_rate_high", TriggerFired)), 20,
                                  while_waiting=traffic.tick, what=f"TriggerFired error_rate_high of {SERVICE}")
                fired = watch.of("error_rate_high", TriggerFired)[0]
                assert isinstance(fired, TriggerFired)
                detect_s = watch.arrived(fired) - t0
                assert fired.value > fired.threshold and fired.samples >= 20, fired
                assert traffic.statuses.get(500, 0) > 0 and traffic.statuses.get(200, 0) > 0, traffic.statuses

                action = await _recovery_action(http, fired.episode_id)
                assert action["action"] == "disable_new_features", action
                # the kill reaches the Node app through the sync stream: the leaderboard is 404 (or an injected 500)
                off_s = await _until_status(http, LEADERBOARD, 404, timeout=5.0)
                assert (await http.get(f"{FRONT}/api/flags/{FLAG}")).json()["killed"] is True

                await _faults(http, "DELETE")
                cleared_s = await watch.until(lambda: bool(watch.of("error_rate_high", TriggerCleared)), 30,
                                              while_waiting=traffic.tick, what="TriggerCleared error_rate_high")
            assert (await _sla(http))["triggers"]["error_rate_high"]["active"] is False
            print(f"\nnode error_rate_high: fired {detect_s:.2f}s after the fault ({fired.value:.3f}), "
                  f"feature off in the Node app {off_s:.2f}s after the action was seen, cleared {cleared_s:.2f}s "
                  f"after the fault was removed; {traffic.sent} requests {traffic.statuses}")
        finally:
            await _faults(http, "DELETE")
            await _restore_flag(http, found, {"Authorization": f"Bearer {admin_token()}"})


# ------------------------------------------------------------------ 3. a real page load, in Chromium


async def test_a_page_load_in_chromium_reaches_kafka_and_the_sla(node_stack: None) -> None:
    from playwright.async_api import async_playwright

    assert os.path.exists(CHROMIUM), f"no {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    async with _client() as http:
        before = (await _sla(http)).get("page_load", {}).get("count", 0)
    started = datetime.now(UTC)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(f"{NODE}/?user=e2e-browser", wait_until="load")
            await page.wait_for_function("document.documentElement.dataset.beacon !== undefined", timeout=10_000)
            assert await page.evaluate("document.documentElement.dataset.beacon") == "sent"
            assert await page.text_content("#items")
        finally:
            await browser.close()

    (event,) = await expect_events(
        BOOTSTRAP, PAGELOADS_TOPIC, count=1, timeout=20,
        where=lambda e: isinstance(e, PageLoadObserved) and e.service == SERVICE and e.time >= started)
    assert isinstance(event, PageLoadObserved)
    assert event.page == "/" and 0 < event.load_ms < 10_000, event
    assert event.ttfb_ms is not None and event.dom_content_loaded_ms is not None, event  # navigation timing
    assert 0 < event.ttfb_ms <= event.dom_content_loaded_ms <= event.load_ms, event

    async with _client() as http:
        deadline = time.monotonic() + 10
        while (count := (await _sla(http)).get("page_load", {}).get("count", 0)) <= before:
            assert time.monotonic() < deadline, f"GET /api/sla/{SERVICE}: page_load count still {count}"
            await asyncio.sleep(0.2)
        pl = (await _sla(http))["page_load"]
        assert pl["p95_ms"] is not None and pl["p95_ms"] > 0, pl
    print(f"\npage load in Chromium: load {event.load_ms:.0f} ms; SLA page_load {pl}")
