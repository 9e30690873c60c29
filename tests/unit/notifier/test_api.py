from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.repository import MemoryIncidentStore
from services.notifier.service import incident_id_for
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.events import IncidentAcknowledged, IncidentResolved, TriggerFired
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender

TOKEN = "t0ken-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "X-Safeguard-Actor": "alice"}


def fired(service: str = "demo", trigger: str = "db_connection_lost", episode: str = "ep1") -> TriggerFired:
    return TriggerFired(service=service, trigger=trigger, episode_id=episode, value=1, threshold=0, window_seconds=30)


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI, InMemoryPublisher]]:
    auth = AuthSettings(admin_token=SecretStr(TOKEN), env="test", client_keys={"reader": SecretStr("reader-key")})
    settings = NotifierSettings(policy_file=CONFIG, auth=auth)
    pub = InMemoryPublisher()
    app = create_app(settings, publisher=pub, store=MemoryIncidentStore(), sender=FakeSender(), consume=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t",
                                     headers={"X-API-Key": "reader-key"}) as c:  # incident details need a reader
            yield c, app, pub


async def test_status_page_shows_services_and_incidents(client) -> None:
    c, app, _ = client
    r = await c.get("/status.json")
    assert r.json()["overall"] == "operational" and r.json()["open"] == []
    await app.state.notifier.open_incident(fired())
    await app.state.notifier.open_incident(fired("shop", "latency_high"))
    body = (await c.get("/status.json")).json()
    assert body["overall"] == "major_outage" and body["services"] == {"demo": "major_outage", "shop": "degraded"}
    assert sorted(i["service"] for i in body["open"]) == ["demo", "shop"]
    html = await c.get("/status")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Major outage" in html.text and "demo: database connection lost" in html.text and "<script" not in html.text


async def test_acknowledge_and_resolve_need_the_admin_token(client) -> None:
    c, app, pub = client
    await app.state.notifier.open_incident(fired())
    iid = incident_id_for("demo", "ep1")
    assert (await c.post(f"/api/incidents/{iid}/acknowledge")).status_code == 401
    assert (await c.post(f"/api/incidents/{iid}/acknowledge", headers={"Authorization": "Bearer nope"})).status_code == 401
    r = await c.post(f"/api/incidents/{iid}/acknowledge", headers=ADMIN)
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "admin:alice"
    assert pub.of_type(IncidentAcknowledged)[0].by == "admin:alice"
    assert (await c.get(f"/api/incidents/{iid}/report")).status_code == 404
    r = await c.post(f"/api/incidents/{iid}/resolve", headers=ADMIN, json={"note": "pool restarted by hand"})
    assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["resolved_by"] == "admin:alice"
    assert pub.of_type(IncidentResolved)[0].by == "admin:alice"
    assert (await c.post(f"/api/incidents/{iid}/resolve", headers=ADMIN)).status_code == 409
    report = await c.get(f"/api/incidents/{iid}/report")
    assert report.headers["content-type"].startswith("text/markdown") and "pool restarted by hand" in report.text
    detail = (await c.get(f"/api/incidents/{iid}")).json()
    assert [e["kind"] for e in detail["timeline"]] == ["opened", "acknowledged", "resolved"]
    assert detail["timeline"][1]["actor"] == "admin:alice"
    listed = (await c.get("/api/incidents")).json()
    assert [i["incident_id"] for i in listed] == [iid]
    assert (await c.get("/status.json")).json()["resolved"][0]["incident_id"] == iid


async def test_unknown_incident_is_404(client) -> None:
    c, _, _ = client
    assert (await c.get("/api/incidents/nope")).status_code == 404
    assert (await c.post("/api/incidents/nope/acknowledge", headers=ADMIN)).status_code == 404
    assert (await c.get("/api/incidents?limit=0")).status_code == 422
