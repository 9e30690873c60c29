"""Issue 15, a truthful first minute: targets start `unknown` (warn, never fail), are re-probed
every `settle_interval_seconds` until they have a verdict, and N/M hysteresis applies between
known states only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from services.health.app import create_app
from services.health.config import parse_config
from services.health.runner import ProbeRunner
from services.health.service import Hysteresis, ProbeResult, TargetState, health_document, overall_status
from services.health.settings import HealthSettings
from services.health.view import SystemView
from shared.events import HealthCheckCompleted
from shared.testing import InMemoryPublisher
from shared.testing.fakes import FakeClock

NOW = datetime(2025, 1, 1, tzinfo=UTC)
PASS = ProbeResult("pass", 1.0, 1.0, "ms", "")
FAIL = ProbeResult("fail", 1.0, None, "ms", "ConnectError: refused")


def target(name: str = "recovery", critical: bool = True) -> TargetState:
    return TargetState(name=name, service=name, kind="http", role="service", critical=critical)


def run(h: Hysteresis, t: TargetState, results: list[ProbeResult]) -> list[str]:
    return [h.observe(t, r, NOW).state for r in results]


def test_a_target_starts_unknown_and_reports_warn_not_fail() -> None:
    t = target()
    assert t.state == "unknown"
    doc = health_document([t])
    assert doc["status"] == "warn" and overall_status([t]) == "warn"


def test_unknown_to_up_on_the_first_success_without_waiting_up_after() -> None:
    h = Hysteresis(down_after=3, up_after=5)
    t = target()
    assert run(h, t, [PASS]) == ["up"]
    assert t.since == NOW and t.ever_up


def test_unknown_to_down_only_after_down_after_failures() -> None:
    h = Hysteresis(down_after=3, up_after=2)
    t = target()
    assert run(h, t, [FAIL, FAIL]) == ["unknown", "unknown"]
    assert health_document([t])["status"] == "warn"
    assert health_document([t])["output"] == "no verdict yet: recovery"
    assert run(h, t, [FAIL]) == ["down"]
    assert health_document([t])["status"] == "fail"


def test_a_success_before_down_after_failures_makes_it_up() -> None:
    h = Hysteresis(down_after=3, up_after=2)
    t = target()
    assert run(h, t, [FAIL, FAIL, PASS]) == ["unknown", "unknown", "up"]


def test_hysteresis_applies_between_known_states() -> None:
    h = Hysteresis(down_after=2, up_after=3)
    t = target()
    assert run(h, t, [FAIL, FAIL, PASS, PASS, PASS]) == ["unknown", "down", "down", "down", "up"]
    assert run(h, t, [FAIL, PASS, FAIL, FAIL]) == ["up", "up", "up", "down"]


def test_settling_until_a_verdict_or_while_never_seen_up() -> None:
    h = Hysteresis(down_after=1, up_after=1)
    fresh, dead, bounced = target("a"), target("b"), target("c")
    h.observe(dead, FAIL, NOW)
    run(h, bounced, [PASS, FAIL])
    assert fresh.settling and dead.settling and dead.state == "down"
    assert not bounced.settling and bounced.state == "down"  # was up once: the normal interval


def test_status_view_does_not_count_unknown_as_down() -> None:
    h = Hysteresis(down_after=3, up_after=2)
    flags, recovery = target("flags"), target("recovery")
    h.observe(flags, PASS, NOW)
    h.observe(recovery, FAIL, NOW)
    body = SystemView().render([flags, recovery], feed={"connected": True}, now=NOW)
    assert body["status"] == "unknown"
    assert body["services"]["recovery"]["state"] == "unknown"
    assert body["services"]["flags"]["state"] == "up"
    assert not any("down" in n for n in body["notes"])
    assert any("recovery" in n and "no verdict" in n for n in body["notes"])


class TimedProber:
    """Fails each target until the fake clock reaches its `up_at`; records when it was probed."""

    def __init__(self, clock: FakeClock, up_at: dict[str, float]) -> None:
        self.clock, self.up_at = clock, up_at
        self.probed: dict[str, list[float]] = {name: [] for name in up_at}

    async def probe(self, target: object, timeout_s: float) -> ProbeResult:
        name: str = target.name  # type: ignore[attr-defined]
        self.probed[name].append(self.clock())
        return PASS if self.clock() >= self.up_at[name] else FAIL

    async def aclose(self) -> None:
        pass


def http(name: str) -> dict[str, object]:
    return {"name": name, "kind": "http", "url": "http://127.0.0.1:1/healthz"}


async def test_fast_reprobe_while_unknown_then_the_normal_interval() -> None:
    clock = FakeClock(start=0.0)
    config = parse_config({"interval_seconds": 30, "down_after": 3, "up_after": 2, "settle_interval_seconds": 1,
                           "targets": [http("ok"), http("late"), http("slow"), http("dead")]}, env={})
    prober = TimedProber(clock, {"ok": 0.0, "late": 2.0, "slow": 4.0, "dead": float("inf")})
    pub = InMemoryPublisher()
    runner = ProbeRunner(config, prober=prober, publisher=pub, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    async with runner.running():
        while clock() < 65:
            await asyncio.sleep(0)
    assert prober.probed["ok"] == [0.0, 30.0, 60.0]
    assert prober.probed["late"] == [0.0, 1.0, 2.0, 30.0, 60.0]  # unknown -> up on its first success
    # down after 3 fast failures (t=2), then up after up_after=2 fast successes (t=4, 5), not 30 s later
    assert prober.probed["slow"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 30.0, 60.0]
    assert runner.states["slow"].state == "up"
    assert prober.probed["dead"][:4] == [0.0, 1.0, 2.0, 3.0]  # never up: keeps settling
    assert runner.states["late"].state == "up" and runner.states["late"].since is not None
    assert runner.states["dead"].state == "down"
    events = pub.of_type(HealthCheckCompleted)
    assert {e.state for e in events if e.target == "late"} == {"up"}  # type: ignore[attr-defined]
    dead = [e for e in events if e.target == "dead"]  # type: ignore[attr-defined]
    assert dead and dead[0].consecutive == 3  # type: ignore[attr-defined]


class Scripted:
    def __init__(self, results: dict[str, ProbeResult]) -> None:
        self.results = results

    async def probe(self, target: object, timeout_s: float) -> ProbeResult:
        return self.results[target.name]  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        pass


async def test_api_answers_200_warn_while_a_service_is_still_starting() -> None:
    config = parse_config({"interval_seconds": 3600, "settle_interval_seconds": 0.05, "down_after": 50,
                           "targets": [http("flags"), http("recovery")]}, env={})
    prober = Scripted({"flags": PASS, "recovery": FAIL})
    app = create_app(HealthSettings(status_feed=False), config=config, publisher=InMemoryPublisher(),
                     prober=prober)  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        runner = app.state.runner
        await runner.wait_cycles(1, timeout_s=5)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.get("/api/health")
            assert runner.states["recovery"].state == "unknown"
            assert r.status_code == 200 and r.json()["status"] == "warn"
            assert r.json()["checks"]["recovery:responseTime"][0]["state"] == "unknown"
            status = (await client.get("/api/system/status")).json()
            assert status["status"] != "major_outage" and status["probes"]["settling"] == ["recovery"]
            prober.results["recovery"] = PASS
            await runner.wait_cycles(1, timeout_s=5)
            r = await client.get("/api/health")
            assert r.status_code == 200 and r.json()["status"] == "pass"
