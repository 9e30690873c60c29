"""The status page through the app: components from the health and SLA services' answers, uptime bars from
the incident history, the incident timeline in HTML, a valid Atom feed, and the JSON's old fields kept."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser  # type: ignore[import-untyped]
import httpx
import pytest
from fastapi import FastAPI

from services.notifier.app import create_app
from services.notifier.repository import MemoryIncidentStore
from services.notifier.settings import NotifierSettings
from services.notifier.status_sources import Snapshot, StatusData, StatusPageSettings, StatusSources, StoreHistory
from shared.auth import AuthSettings
from shared.events import TriggerFired
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender

ATOM = "{http://www.w3.org/2005/Atom}"
SYSTEM = {"services": {"demo": {"checks": {"demo": {"state": "up", "status": "pass", "critical": True},
                                          "demo-blue": {"state": "down", "status": "fail", "critical": False}}},
                      "flags": {"checks": {"flags": {"state": "up", "status": "pass", "critical": True}}}},
          "dependencies": {"redis": {"checks": {"redis": {"state": "up", "status": "pass", "critical": True}}}}}
SLA = {"services": [{"service": "demo", "budgets": {"requests": {
    "objective": 0.999, "availability": 0.9995, "period_days": 30, "budget_remaining_ratio": 0.5}}}]}


class FixedSources:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot


@pytest.fixture
async def page() -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    store = MemoryIncidentStore()
    sources = FixedSources(Snapshot(SYSTEM, SLA, datetime.now(UTC)))
    status = StatusData(history=StoreHistory(store, since=datetime.now(UTC) - timedelta(days=3)),
                        sources=sources)  # type: ignore[arg-type]
    app = create_app(NotifierSettings(policy_file=CONFIG, auth=AuthSettings(env="test")), publisher=InMemoryPublisher(),
                     store=store, sender=FakeSender(), consume=False, status=status)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
            yield c, app


async def _incident(app: FastAPI, service: str = "demo", episode: str = "ep1") -> str:
    inc = await app.state.notifier.open_incident(TriggerFired(service=service, trigger="db_connection_lost",
                                                             episode_id=episode, value=1, threshold=0,
                                                             window_seconds=60))
    return str(inc.incident_id)


async def test_json_keeps_its_fields_and_adds_components_with_bars(page: tuple[httpx.AsyncClient, FastAPI]) -> None:
    c, app = page
    body = (await c.get("/status.json")).json()
    assert {"generated_at", "overall", "services", "open", "resolved"} <= body.keys()
    comps = {x["name"]: x for x in body["components"]}
    assert [(x["group"], x["name"], x["state"]) for x in body["components"]] == [
        ("Application", "demo", "partial_outage"), ("Safeguard", "flags", "operational"),
        ("Dependencies", "redis", "operational")]
    assert body["overall"] == "partial_outage" and body["open"] == []
    days = comps["demo"]["uptime"]["days"]
    assert len(days) == 90 and days[0]["uptime"] is None and days[-1]["uptime"] == 1.0  # recorded 3 days: no data before
    assert sum(d["uptime"] is None for d in days) == 86 and comps["flags"]["uptime"] is None  # SLA does not watch flags
    iid = await _incident(app)
    body = (await c.get("/status.json")).json()
    demo = body["components"][0]
    assert demo["state"] == "major_outage" and body["overall"] == "major_outage"  # a critical incident is open
    assert demo["uptime"]["days"][-1]["worst"] is not None and body["open"][0]["incident_id"] == iid
    assert "availability 99.95 %" in demo["budget"]


async def test_html_shows_components_bars_and_the_incident_timeline(page: tuple[httpx.AsyncClient, FastAPI]) -> None:
    c, app = page
    await _incident(app)
    r = await c.get("/status")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<script" not in html and "src=" not in html and "stylesheet" not in html  # no JS, nothing fetched
    for text in ("Application", "Safeguard", "Dependencies", 'id="component-demo"', 'id="component-redis"',
                 "Major outage", "down: demo-blue", "Open incidents", "opened", 'class="bars" role="img"', "days without data"):
        assert text in html, text
    assert html.count('<li class="nodata"') == 86  # demo's bars: 86 days before recording began
    iid = await _incident(app, "shop", "ep9")
    await app.state.notifier.resolve(iid, actor="admin:alice", note="pool restarted by hand")
    html = (await c.get("/status")).text
    past = html.split('id="past-h"')[1]
    assert f'<details class="past" id="incident-{iid}">' in past and "pool restarted by hand" in past


async def test_feed_is_valid_atom_with_one_entry_per_incident(page: tuple[httpx.AsyncClient, FastAPI]) -> None:
    c, app = page
    empty = await c.get("/status/feed.atom")
    assert empty.status_code == 200 and empty.headers["content-type"].startswith("application/atom+xml")
    assert not feedparser.parse(empty.content).bozo
    first, second = await _incident(app), await _incident(app, "shop", "ep2")
    r = await c.get("/status/feed.atom")
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10" and parsed.feed.links[0].href == "http://t/status/feed.atom"
    assert {e.id for e in parsed.entries} == {f"tag:safeguard.local,2026:incident/{i}" for i in (first, second)}
    root = ET.fromstring(r.content)  # RFC 4287's required elements, on the feed and every entry
    for node in (root, *root.iter(f"{ATOM}entry")):
        assert all(node.find(f"{ATOM}{tag}") is not None for tag in ("id", "title", "updated")), ET.tostring(node)
    content = parsed.entries[0].content[0]
    assert content.type == "text/html" and "<li>" in content.value


async def test_a_source_that_fails_keeps_its_last_answer_and_is_named() -> None:
    answers: dict[str, Any] = {"/api/system/status": SYSTEM, "/api/sla": SLA}

    def handler(request: httpx.Request) -> httpx.Response:
        found = answers.get(request.url.path)
        return httpx.Response(200, json=found) if found is not None else httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        sources = StatusSources(settings=StatusPageSettings(health_url="http://h", sla_url="http://s"), http=http)
        first = await sources.refresh()
        assert first.system == SYSTEM and first.sla == SLA and first.errors == () and first.fetched_at is not None
        del answers["/api/sla"]
        second = await sources.refresh()
        assert second.sla == SLA and second.fetched_at == first.fetched_at
        assert len(second.errors) == 1 and second.errors[0].startswith("sla service: HTTPStatusError")


def test_settings_reject_a_url_without_scheme() -> None:
    with pytest.raises(ValueError, match="health_url"):
        StatusPageSettings(health_url="health:8002")
