from __future__ import annotations

from datetime import UTC, datetime

from services.health.service import Hysteresis, ProbeResult, TargetState, health_document, overall_status

NOW = datetime(2025, 1, 1, tzinfo=UTC)
PASS = ProbeResult("pass", 1.0, 1.0, "ms", "")
WARN = ProbeResult("warn", 3000.0, 3000.0, "ms", "slow response")
FAIL = ProbeResult("fail", 1.0, None, "ms", "ConnectError")


def target(name: str = "flags", critical: bool = True, kind: str = "http") -> TargetState:
    return TargetState(name=name, service=name, kind=kind, role="service", critical=critical)


def run(h: Hysteresis, t: TargetState, results: list[ProbeResult]) -> list[str | None]:
    return [h.observe(t, r, NOW).state for r in results]


def test_down_after_n_failures_up_after_m_successes() -> None:
    h = Hysteresis(down_after=3, up_after=2)
    t = target()
    assert run(h, t, [PASS, FAIL, FAIL, FAIL, PASS, PASS]) == ["up", "up", "up", "down", "down", "up"]


def test_no_flapping_on_alternating_results() -> None:
    h = Hysteresis(down_after=3, up_after=2)
    t = target()
    assert set(run(h, t, [PASS] + [FAIL, PASS] * 10)) == {"up"}
    t2 = target()
    assert set(run(h, t2, [FAIL] * 3 + [PASS, FAIL] * 10)) == {"unknown", "down"}


def test_warn_keeps_a_target_up_but_warns() -> None:
    h = Hysteresis(down_after=1, up_after=1)
    t = target()
    h.observe(t, WARN, NOW)
    assert t.state == "up" and overall_status([t]) == "warn"


def test_consecutive_counts_the_current_streak() -> None:
    h = Hysteresis(down_after=3, up_after=2)
    t = target()
    run(h, t, [PASS, PASS, FAIL, FAIL])
    assert t.consecutive == 2 and t.failures == 2


def test_ietf_document_shape_and_overall_status() -> None:
    h = Hysteresis(down_after=1, up_after=1)
    flags, pg, demo = target("flags"), target("postgres", kind="postgres"), target("demo-green", critical=False)
    h.observe(flags, PASS, NOW)
    h.observe(pg, ProbeResult("pass", 2.5, 2.5, "ms", ""), NOW)
    h.observe(demo, FAIL, NOW)
    doc = health_document([flags, pg, demo])
    assert doc["status"] == "warn"  # a non-critical target is down
    entry = doc["checks"]["postgres:responseTime"][0]
    assert entry["componentType"] == "datastore" and entry["observedValue"] == 2.5
    assert entry["observedUnit"] == "ms" and entry["status"] == "pass" and entry["time"] == NOW.isoformat()
    assert doc["checks"]["demo-green:responseTime"][0]["status"] == "fail"
    h.observe(pg, FAIL, NOW)
    assert health_document([flags, pg, demo])["status"] == "fail"


def test_no_probe_yet_is_warn() -> None:
    assert health_document([target()])["status"] == "warn"
