"""The Incidents, SLA and Recovery pages over fake service APIs (httpx.MockTransport): what they show, in
words, and that every change goes to the service with the admin token on behalf of the signed-in operator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.console.app import create_app
from services.console.backends import Backends
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings

TOKEN = "t0ken-for-console-tests-0123"
T0 = "2026-11-30T12:00:00+00:00"


def _incident(iid: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"incident_id": iid, "service": "demo", "trigger": "error_rate_high", "episode_id": "e", "severity": "major",
            "title": "demo: error rate high (0.156997 > 0.05)", "status": status, "level": 1, "acknowledged_by": None,
            "opened_at": T0, "mitigated_at": None, "resolved_at": None, "resolved_by": None, "version": 1,
            "timeline": [{"at": T0, "kind": "opened", "actor": "sla",
                          "text": "demo: error rate 15.7 % > 5 %; level 1: auto-recovery system"}]} | extra


class Fake:
    """One fake service: `routes[(method, path)]` -> (status, body); every request is kept."""

    def __init__(self, routes: dict[tuple[str, str], tuple[int, Any]]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []
        self.down = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("refused")
        self.seen.append(request)
        status, body = self.routes.get((request.method, request.url.path), (404, {"detail": "not found"}))
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers={"content-type": "text/markdown"})
        return httpx.Response(status, json=body)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler), base_url="http://fake")


ESCALATED = _incident("inc-b", "open", level=2, trace_id="4bf92f3577b34da6a3ce929d0e0e4736", timeline=[
    {"at": T0, "kind": "opened", "actor": "sla", "text": "demo: error rate 15.7 % > 5 %; level 1: auto-recovery system"},
    {"at": "2026-11-30T12:05:00+00:00", "kind": "escalated", "actor": "notifier",
     "text": "level 2: on-call developer (not mitigated or acknowledged within 5m 00s at level 1)"}])
NOTIFIER = {
    ("GET", "/api/incidents"): (200, [_incident("inc-a", "resolved", resolved_at="2026-11-30T12:10:00+00:00",
                                                opened_at="2026-11-30T12:01:00+00:00"), ESCALATED]),
    ("GET", "/api/incidents/inc-b"): (200, ESCALATED),
    ("GET", "/api/incidents/inc-b/deliveries"): (200, [
        {"delivery_id": "d1", "incident_id": "inc-b", "channel": "oncall_page", "recipient": "dev", "ok": True,
         "error": "", "message": "[L2 on-call developer] MAJOR ...", "at": "2026-11-30T12:05:01+00:00",
         "status": "sent", "attempts": 1}]),
    ("GET", "/api/incidents/inc-a"): (200, _incident("inc-a", "resolved")),
    ("GET", "/api/incidents/inc-a/deliveries"): (200, []),
    ("GET", "/api/incidents/inc-a/report"): (200, "# Post-incident report\n\n<script>alert(1)</script>\n\n"
                                                  "| a | b |\n|---|---|\n| 1 | 2 |\n"),
    ("POST", "/api/incidents/inc-b/acknowledge"): (200, ESCALATED),
    ("POST", "/api/incidents/inc-a/resolve"): (409, {"detail": "the incident is already resolved"}),
}
PAUSED = {"paused": True, "history": [],
          "scopes": [{"scope": "*", "paused": True, "actor": "admin:bob", "reason": "deploy", "at": T0}]}
RECOVERY = {
    ("GET", "/api/recovery/actions"): (200, [
        {"action_id": "a1", "service": "demo", "action": "disable_new_features", "trigger": "error_rate_high",
         "episode_id": "e1", "instance": None, "attempt": 1, "actor": "recovery", "reason": "error rate 15.7 % > 5 %",
         "status": "skipped", "detail": "paused: auto-recovery paused for every service by admin:bob",
         "started_at": T0, "finished_at": T0},
        {"action_id": "a0", "service": "demo", "action": "disable_new_features", "trigger": "error_rate_high",
         "episode_id": "e0", "instance": None, "attempt": 1, "actor": "recovery", "reason": "error rate 31 % > 5 %",
         "status": "succeeded", "detail": "killed flags: gamification; sent DisableNewFeatures; trigger cleared",
         "started_at": T0, "finished_at": T0, "verify_outcome": "verified", "verified_at": T0, "verify_seconds": 0.04,
         "effect": "OFREP serves gamification off (reason DISABLED)", "killed_flags": ["gamification"]},
        {"action_id": "a9", "service": "demo", "action": "restart_connection_pool", "trigger": "db_connection_lost",
         "episode_id": "e9", "instance": None, "attempt": 1, "actor": "recovery", "reason": "db down",
         "status": "failed", "detail": "sent RestartConnectionPool", "started_at": T0, "finished_at": T0,
         "verify_outcome": "not_seen", "verified_at": T0, "verify_seconds": 60.0,
         "effect": "no effect seen (looked for 60.0s)", "killed_flags": []}]),
    ("GET", "/api/recovery/kept-off"): (200, [
        {"flag": "gamification", "action_id": "a0", "service": "demo", "trigger": "error_rate_high", "episode_id": "e0",
         "reason": "", "killed_at": T0, "kept_off": True,
         "text": "turned off by recovery at 18:42 UTC for episode e0 (demo, error_rate_high): stays off until a person "
                 "turns it on"},
        {"flag": "beta", "action_id": "a0", "service": "demo", "killed_at": T0, "kept_off": None, "text": "unknown"}]),
    ("GET", "/api/recovery/pause"): (200, PAUSED),
    ("GET", "/api/recovery/policy"): (200, {"policy": {}, "active": []}),
    ("POST", "/api/recovery/resume"): (200, {"paused": False, "scopes": [], "history": []}),
}
SNAP = {"service": "demo", "requests": {"window_seconds": 5, "error_rate": 0.156997, "latency_ms": {"p95": 812.0}},
        "memory": {"demo-blue": {"percent": 43.0}}, "triggers": {"error_rate_high": {"value": 0.156997}},
        "active_triggers": ["error_rate_high"],
        "budgets": {"requests": {"budget_remaining_ratio": 0.832, "alerts": [],
                                 "burn_rates": [{"window": "1h", "rate": 2.5}]}}}
SERIES = {"service": "demo", "as_of": T0, "last_data_at": T0, "hours": 6.0, "objective": 0.999, "period_days": 30.0,
          "thresholds": {"error_rate": 0.05, "latency_ms": 5000.0, "latency_quantile": 0.95, "memory_percent": 90.0},
          "minutes": {"t": [1], "requests": [10], "error_rate": [0.2], "latency_ms": [40.0]}, "memory": {},
          "budget": {"t": [1], "burn": {"1h": [1.0], "6h": [1.0], "3d": [1.0]}, "budget_remaining": [0.9],
                     "alerts": []}}
SLA = {("GET", "/api/sla"): (200, {"objective": 0.999, "services": [SNAP, {**SNAP, "service": "shop"}]}),
       ("GET", "/api/sla/demo/series"): (200, SERIES)}


@pytest.fixture
async def fakes() -> dict[str, Fake]:
    return {"notifier": Fake(NOTIFIER), "recovery": Fake(RECOVERY), "sla": Fake(SLA), "flags": Fake({}),
            "health": Fake({})}


@pytest.fixture
async def client(fakes: dict[str, Fake]) -> AsyncIterator[httpx.AsyncClient]:
    backends = Backends(**{name: fake.client() for name, fake in fakes.items()})
    app = create_app(ConsoleSettings(trace_url="http://zipkin.test/zipkin/traces/{trace_id}"), backends=backends,
                     auth=AuthSettings(env="local", admin_token=SecretStr(TOKEN)))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        yield c


async def _sign_in(c: httpx.AsyncClient) -> str:
    await c.post("/console/login", data={"token": TOKEN, "name": "alice"})
    page = (await c.get("/console/incidents")).text
    return page.split('"X-CSRF-Token": "')[1].split('"')[0]


def _authorised(fake: Fake, method: str, path: str) -> Callable[[], httpx.Request]:
    [req] = [r for r in fake.seen if r.method == method and r.url.path == path]
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    return lambda: req


async def test_the_list_shows_open_incidents_first_in_human_numbers(client: httpx.AsyncClient,
                                                                    fakes: dict[str, Fake]) -> None:
    page = (await client.get("/console/incidents")).text
    assert page.index("/console/incidents/inc-b") < page.index("/console/incidents/inc-a")
    assert "demo: error rate 15.7 % &gt; 5 %" in page and "0.156997" not in page
    assert "1 open, 2 in 30 days" in page
    _authorised(fakes["notifier"], "GET", "/api/incidents")


async def test_an_incident_shows_timeline_notices_level_and_trace(client: httpx.AsyncClient) -> None:
    page = (await client.get("/console/incidents/inc-b")).text
    assert page.index("kind-opened") < page.index("kind-escalated") < page.index("kind-notice")
    assert "oncall_page to dev sent" in page and "+5 min 01 s" in page
    assert '<li class="current"><b>L2</b> on-call developer</li>' in page
    assert '<li class="reached"><b>L1</b> auto-recovery system</li>' in page
    assert 'href="http://zipkin.test/zipkin/traces/4bf92f3577b34da6a3ce929d0e0e4736"' in page
    assert "Written when the incident is resolved" in page
    assert 'id="acknowledge"' not in page  # read-only without a session


async def test_the_report_is_rendered_and_its_html_is_not(client: httpx.AsyncClient) -> None:
    page = (await client.get("/console/incidents/inc-a")).text
    assert "<h1>Post-incident report</h1>" in page and "<td>1</td>" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "Open trace" not in page and "none recorded" in page


async def test_acknowledge_goes_to_the_notifier_as_the_operator(client: httpx.AsyncClient,
                                                                fakes: dict[str, Fake]) -> None:
    assert (await client.post("/console/incidents/inc-b/acknowledge")).status_code == 401
    csrf = await _sign_in(client)
    assert 'id="acknowledge"' in (await client.get("/console/incidents/inc-b")).text
    assert (await client.post("/console/incidents/inc-b/acknowledge", data={"csrf": "forged"})).status_code == 403
    r = await client.post("/console/incidents/inc-b/acknowledge", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"].endswith("/console/incidents/inc-b?done=acknowledged")
    req = _authorised(fakes["notifier"], "POST", "/api/incidents/inc-b/acknowledge")()
    assert req.headers["x-safeguard-actor"] == "alice"


async def test_a_refused_resolve_says_why(client: httpx.AsyncClient) -> None:
    csrf = await _sign_in(client)
    r = await client.post("/console/incidents/inc-a/resolve", data={"csrf": csrf, "note": "fixed"})
    assert r.status_code == 409 and "notifier: the incident is already resolved" in r.text


async def test_a_notifier_that_does_not_answer_is_a_502_page(client: httpx.AsyncClient,
                                                            fakes: dict[str, Fake]) -> None:
    fakes["notifier"].down = True
    r = await client.get("/console/incidents")
    assert r.status_code == 502 and "the notifier service did not answer (ConnectError)" in r.text


async def test_recovery_shows_the_pause_and_skips_and_resumes_as_the_operator(client: httpx.AsyncClient,
                                                                           fakes: dict[str, Fake]) -> None:
    page = (await client.get("/console/recovery")).text
    assert "Paused for every service" in page and "paused by <b>admin:bob</b>" in page
    assert "skipped: paused" in page
    csrf = await _sign_in(client)
    r = await client.post("/console/recovery/resume", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"].endswith("/console/recovery?done=resume")
    req = _authorised(fakes["recovery"], "POST", "/api/recovery/resume")()
    assert req.headers["x-safeguard-actor"] == "alice"
    assert json.loads(req.content) == {"reason": "from the console by admin:alice"}
    r = await client.post("/console/recovery/pause", data={"csrf": csrf, "service": "demo", "reason": "hands on"})
    assert r.status_code == 404 and "recovery: not found" in r.text  # the fake has no POST /pause: its 404 shown
    [sent] = [x for x in fakes["recovery"].seen if x.url.path == "/api/recovery/pause" and x.method == "POST"]
    assert json.loads(sent.content) == {"reason": "hands on", "service": "demo"}


async def test_recovery_shows_verified_effects_and_the_features_it_keeps_off(client: httpx.AsyncClient) -> None:
    page = (await client.get("/console/recovery")).text
    assert '<td class="effect ok" title="verified at ' in page
    assert "verified after 0.0s: OFREP serves gamification off (reason DISABLED)" in page
    assert '<td class="effect bad"' in page and "no effect seen (looked for 60.0s)" in page
    kept = page.split('id="kept-off"')[1].split("</section>")[0]
    assert '<a href="/console/flags/gamification"><b>gamification</b></a>' in kept
    assert "turned off by recovery at 18:42 UTC for episode e0" in kept and "stays off until a person" in kept
    assert "beta" not in kept  # not known to be off by recovery: no mark


async def test_sla_page_in_words_with_the_series_for_the_charts(client: httpx.AsyncClient) -> None:
    page = (await client.get("/console/sla")).text
    assert "error rate (last 5 s): <b class=\"bad\">15.7 % &gt; 5 %</b>" in page
    assert "p95 latency: <b class=\"ok\">812 ms, trigger above 5 s</b>" in page
    assert "memory (highest instance): <b class=\"ok\">43 %, trigger above 90 %</b>" in page
    assert "firing: <b class=\"bad\">error rate 15.7 %</b>" in page
    assert "requests: <b>83.2 % left</b>" in page and 'id="chart-errors"' in page
    data = page.split('id="sla-data"')[1].split(">", 1)[1].split("</script>")[0]
    assert json.loads(data)["thresholds"]["error_rate"] == 0.05
    assert (await client.get("/console/sla/demo/series.json")).json()["service"] == "demo"
    r = await client.get("/console/sla/nope/series.json")
    assert r.status_code == 404 and "sla:" in r.json()["detail"]
    assert (await client.get("/console/sla?hours=0")).status_code == 422


def test_old_titles_and_reasons_read_in_human_numbers() -> None:
    from services.console.incident_views import human_reason, human_title

    assert human_title(_incident("x", "open")) == "demo: error rate 15.7 % > 5 %"
    assert human_title(_incident("x", "open", title="demo: deploy v2 rolled back")) == "demo: deploy v2 rolled back"
    assert human_reason("memory_high: 109.21 > 90 (instance demo-green)") == "memory 109.2 % > 90 % (instance demo-green)"
    assert human_reason("error_rate_high: error rate 15.7 % > 5 %") == "error_rate_high: error rate 15.7 % > 5 %"
