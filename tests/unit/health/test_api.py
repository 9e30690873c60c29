from __future__ import annotations

import asyncio

import httpx

from services.health.app import create_app
from services.health.config import parse_config
from services.health.service import ProbeResult
from services.health.settings import HealthSettings
from shared.events import HealthCheckCompleted, IncidentOpened, ProcessStatsReported, PoolStats, FlagSnapshot
from shared.testing import InMemoryPublisher


class ScriptedProber:
    """Answers each target from a dict the test changes between cycles."""

    def __init__(self, results: dict[str, ProbeResult]) -> None:
        self.results = results

    async def probe(self, target: object, timeout_s: float) -> ProbeResult:
        return self.results[target.name]  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        pass


CONFIG = parse_config({"interval_seconds": 3600, "down_after": 2, "up_after": 1, "targets": [
    {"name": "flags", "kind": "http", "url": "http://127.0.0.1:1/healthz"},
    {"name": "sla", "kind": "http", "url": "http://127.0.0.1:2/healthz"},
    {"name": "postgres", "kind": "postgres"},
]}, env={})
def client_for(app: object) -> httpx.AsyncClient:
    """ASGITransport runs no lifespan: the test enters it, which sets app.state."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")  # type: ignore[arg-type]


async def first_cycle(runner: object) -> None:
    for _ in range(200):
        if runner.cycles:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no probe cycle")


OK = ProbeResult("pass", 1.0, 1.0, "ms", "")
DOWN = ProbeResult("fail", 1.0, None, "ms", "ConnectError: refused")


async def test_health_and_status_with_one_service_stopped() -> None:
    prober = ScriptedProber({"flags": OK, "sla": OK, "postgres": OK})
    pub = InMemoryPublisher()
    app = create_app(HealthSettings(status_feed=False), config=CONFIG, publisher=pub, prober=prober)  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        runner = app.state.runner
        await first_cycle(runner)
        async with client_for(app) as client:
            r = await client.get("/api/health")
            assert r.status_code == 200 and r.headers["content-type"] == "application/health+json"
            prober.results["sla"] = DOWN
            await runner.run_cycle()
            await runner.run_cycle()
            r = await client.get("/api/health")
            assert r.status_code == 503 and r.json()["status"] == "fail"
            assert r.json()["checks"]["sla:responseTime"][0]["status"] == "fail"
            status = (await client.get("/api/system/status")).json()
            assert status["services"]["sla"]["state"] == "down"
            assert status["services"]["flags"]["state"] == "up"
            assert status["dependencies"]["postgres"]["state"] == "up"
            assert status["status"] == "major_outage"
            assert any("sla" in n and "down" in n for n in status["notes"])
            assert any("not connected" in n for n in status["notes"])
    checks = pub.of_type(HealthCheckCompleted)
    assert len(checks) >= 9 and {c.target for c in checks} == {"flags", "sla", "postgres"}  # type: ignore[attr-defined]


async def test_status_view_shows_topic_data() -> None:
    prober = ScriptedProber({"flags": OK, "sla": OK, "postgres": OK})
    app = create_app(HealthSettings(status_feed=False), config=CONFIG, publisher=InMemoryPublisher(), prober=prober)  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        view = app.state.view
        view.apply(FlagSnapshot(flag_key="gamification", version=3, definition={"state": "DISABLED"}))
        view.apply(IncidentOpened(service="demo", incident_id="inc-1", title="error rate high"))
        view.apply(ProcessStatsReported(service="demo", instance="blue", pid=1, rss_bytes=1, memory_limit_bytes=10,
                                        memory_percent=10, pools=[PoolStats(size=1, idle=1, max_size=5, connected=True)],
                                        breakers={"postgres": "open"}))
        await first_cycle(app.state.runner)
        async with client_for(app) as client:
            body = (await client.get("/api/system/status")).json()
    assert body["flags"]["gamification"]["state"] == "DISABLED"
    assert body["incidents"]["open"][0]["incident_id"] == "inc-1"
    assert body["breakers"]["demo"]["postgres"]["state"] == "open"
    assert body["apps"]["demo"]["instances"]["blue"]["pools"][0]["connected"] is True
    assert body["status"] == "degraded"
