"""Manual incidents (admin, audited in the timeline) and the post-incident report in Markdown and HTML."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.models import Incident, TimelineEntry
from services.notifier.policy import load_policy
from services.notifier.report import clock_times, render_report, render_report_html
from services.notifier.repository import MemoryIncidentStore
from services.notifier.service import NotifierService
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.events import IncidentMitigated, IncidentOpened, TriggerCleared, TriggerFired
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender

ADMIN = {"Authorization": "Bearer t0ken", "X-Safeguard-Actor": "alice"}


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, NotifierService, FakeSender, InMemoryPublisher]]:
    settings = NotifierSettings(policy_file=CONFIG, auth=AuthSettings(admin_token=SecretStr("t0ken"), env="test"))
    sender, pub = FakeSender(), InMemoryPublisher()
    app = create_app(settings, publisher=pub, store=MemoryIncidentStore(), sender=sender, consume=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
            yield c, app.state.notifier, sender, pub


async def test_opening_by_hand_needs_the_admin_token_and_is_audited(client: Any) -> None:
    c, svc, sender, pub = client
    body = {"service": "checkout", "title": "customers report failed payments", "severity": "critical"}
    assert (await c.post("/api/incidents", json=body)).status_code == 401
    r = await c.post("/api/incidents", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["title"] == "checkout: customers report failed payments" and inc["acknowledged_by"] == "admin:alice"
    assert inc["timeline"][0]["actor"] == "admin:alice" and inc["escalate_at"] is None
    [opened] = pub.of_type(IncidentOpened)
    assert opened.trigger == "manual" and opened.severity == "critical"
    assert ("status_page", "status", "Investigating: checkout: customers report failed payments") in sender.sent
    assert not [s for s in sender.sent if s[0] == "oncall_page"]


@pytest.mark.parametrize(("body", "field"), [
    ({"service": "Bad Name!", "title": "x" * 10}, "service"),
    ({"service": "shop", "title": ""}, "title"),
    ({"service": "shop", "title": "valid title", "severity": "apocalyptic"}, "severity"),
    ({"service": "shop", "title": "valid title", "owner": "bob"}, "owner"),
])
async def test_a_bad_manual_incident_is_refused_naming_the_field(client: Any, body: dict[str, Any],
                                                                 field: str) -> None:
    c, svc, *_ = client
    r = await c.post("/api/incidents", json=body, headers=ADMIN)
    assert r.status_code == 422 and field in r.text
    assert await svc.store.open_incidents() == []


async def test_page_true_pages_the_on_call_and_escalates(client: Any) -> None:
    c, svc, sender, _ = client
    r = await c.post("/api/incidents", headers=ADMIN, json={"service": "shop", "title": "checkout slow", "page": True})
    assert r.status_code == 201 and r.json()["acknowledged_by"] is None and r.json()["level"] == 2
    pages = [s for s in sender.sent if s[0] == "oncall_page"]
    assert len(pages) == 1 and "opened by admin:alice" in pages[0][2] and "Acknowledge: http" in pages[0][2]
    svc.now = lambda: datetime.now(UTC) + timedelta(minutes=16)
    [inc] = await svc.escalate_overdue()
    assert inc.level == 3


async def test_updates_and_severity_changes_are_audited(client: Any) -> None:
    c, svc, sender, pub = client
    iid = (await c.post("/api/incidents", headers=ADMIN, json={"service": "shop", "title": "checkout slow"})).json()[
        "incident_id"]
    bob = {**ADMIN, "X-Safeguard-Actor": "bob"}
    assert (await c.post(f"/api/incidents/{iid}/updates", json={"text": "x"})).status_code == 401
    r = await c.post(f"/api/incidents/{iid}/updates", headers=bob, json={"text": "cache node 3 is slow",
                                                                        "status": "identified"})
    assert r.status_code == 200 and r.json()["timeline"][-1]["actor"] == "admin:bob"
    assert ("status_page", "status", "Identified: shop: checkout slow: cache node 3 is slow") in sender.sent
    r = await c.post(f"/api/incidents/{iid}/severity", headers=bob, json={"severity": "critical", "reason": "spreading"})
    assert r.json()["severity"] == "critical"
    assert r.json()["timeline"][-1]["text"] == "severity major -> critical: spreading"
    assert (await c.post(f"/api/incidents/{iid}/severity", headers=bob, json={"severity": "bad"})).status_code == 422
    r = await c.post(f"/api/incidents/{iid}/updates", headers=bob, json={"text": "node replaced", "status": "monitoring"})
    assert r.json()["status"] == "mitigated" and pub.of_type(IncidentMitigated)[0].by == "admin:bob"
    assert (await c.post(f"/api/incidents/{iid}/resolve", headers=bob, json={"note": "fine"})).status_code == 200
    late = await c.post(f"/api/incidents/{iid}/updates", headers=bob, json={"text": "too late"})
    assert late.status_code == 409 and "already resolved" in late.text
    assert (await c.post("/api/incidents/inc-nope/updates", headers=bob, json={"text": "x"})).status_code == 404


def _incident() -> Incident:
    t0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    return Incident(
        incident_id="inc-r", service="demo", trigger="error_rate_high", episode_id="ep", title="demo: errors 8%",
        severity="major", status="resolved", level=2, acknowledged_by="bob", opened_at=at(0), mitigated_at=at(600),
        resolved_at=at(1500), resolved_by="sla", timeline=[
            TimelineEntry(at=at(0), kind="opened", text="demo: errors 8% <script>x</script>", actor="sla"),
            TimelineEntry(at=at(-45), kind="detected", text="first bad", actor="sla"),
            TimelineEntry(at=at(30), kind="action", text="recovery started restart_pool (attempt 1)", actor="recovery"),
            TimelineEntry(at=at(600), kind="mitigated", text="restart_pool verified after 4.0s: pool connected",
                          actor="recovery"),
            TimelineEntry(at=at(1500), kind="resolved", text="trigger cleared", actor="sla")])


def test_the_report_has_every_section_and_the_runbook_times() -> None:
    inc = _incident()
    assert clock_times(inc) == {"detect": 45.0, "mitigate": 645.0, "resolve": 1545.0}
    md = render_report(inc, targets=load_policy(CONFIG).targets, budget_note="12% of the 30-day budget")
    for section in ("## Summary", "## Impact", "## Trigger", "## Timeline", "## Actions and their verified effects",
                    "## Recovery time against the runbook", "## Root cause", "## Action items"):
        assert section in md
    assert "| Time to detect | 0m 45s | 5m 00s | met |" in md
    assert "| Time to mitigate | 10m 45s | 15m 00s | met |" in md
    assert "| Time to resolve | 25m 45s | 1h 00m 00s | met |" in md
    assert "effect: restart_pool verified after 4.0s: pool connected" in md
    assert "Budget alert during the incident: 12% of the 30-day budget" in md and "Duration: 25m 00s" in md
    assert "Requests failed: not known" in md  # no SLA answer given: said, not made up
    assert md.index("first bad") < md.index("opened: demo")  # the timeline in time order


def test_missed_targets_and_unknown_detection_say_so() -> None:
    inc = _incident().model_copy(update={"resolved_at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC)})
    inc.timeline = [e for e in inc.timeline if e.kind != "detected"]
    md = render_report(inc, targets=load_policy(CONFIG).targets)
    assert "| Time to detect | not known | 5m 00s | - |" in md and "| Time to resolve | 2h 00m 00s | 1h 00m 00s | MISSED |" in md


def test_the_html_report_renders_tables_and_escapes_markup() -> None:
    inc = _incident()
    html = render_report_html(render_report(inc, targets=load_policy(CONFIG).targets), incident=inc)
    assert "<h1>Post-incident report: demo: errors 8%</h1>" in html and "<h2>Root cause</h2>" in html
    assert "<table>" in html and "<td>Time to detect</td>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


async def test_report_html_endpoint(client: Any) -> None:
    c, svc, *_ = client
    await svc.open_incident(TriggerFired(service="demo", trigger="error_rate_high", episode_id="e1", value=0.1,
                                         threshold=0.05, window_seconds=30,
                                         first_bad_at=datetime.now(UTC) - timedelta(seconds=40)))
    [inc] = await svc.store.open_incidents()
    reader = {"Authorization": "Bearer t0ken"}
    assert (await c.get(f"/api/incidents/{inc.incident_id}/report.html", headers=reader)).status_code == 404
    await svc.resolve_on_clear(TriggerCleared(service="demo", trigger="error_rate_high", episode_id="e1", value=0,
                                              threshold=0.05))
    assert (await c.get(f"/api/incidents/{inc.incident_id}/report.html")).status_code == 401
    r = await c.get(f"/api/incidents/{inc.incident_id}/report.html", headers=reader)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<td>Time to detect</td>\n<td>0m 4" in r.text and "<h2>Action items</h2>" in r.text
