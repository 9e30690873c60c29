"""Component states from the health service's checks and the notifier's incidents; SLA budgets in words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.notifier.models import Incident
from services.notifier.status_components import budget_text, checks_state, components


def check(state: str, status: str = "pass", *, critical: bool = True, message: str = "") -> dict[str, Any]:
    return {"state": state, "status": status, "critical": critical, "message": message}


@pytest.mark.parametrize(("checks", "expected"), [
    ({"a": check("up"), "b": check("up")}, "operational"),
    ({"a": check("up", "warn", message="latency 2300 ms > 2000 ms")}, "degraded"),
    ({"a": check("up"), "blue": check("down", "fail", critical=False)}, "partial_outage"),
    ({"a": check("down", "fail"), "blue": check("up", critical=False)}, "major_outage"),
    ({"blue": check("down", "fail", critical=False)}, "major_outage"),
    ({"a": check("unknown", "unknown")}, "unknown"),
    ({}, "unknown"),
])
def test_checks_map_to_statuspage_states(checks: dict[str, dict[str, Any]], expected: str) -> None:
    assert checks_state(checks)[0] == expected


def incident(service: str, *, severity: str = "major", status: str = "open") -> Incident:
    return Incident(incident_id=f"inc-{service}-{status}", service=service, trigger="error_rate_high", episode_id="e",
                    title=f"{service}: error rate", severity=severity, status=status,  # type: ignore[arg-type]
                    opened_at=datetime(2026, 11, 30, tzinfo=UTC))


def test_groups_and_the_worse_of_checks_and_incidents() -> None:
    system = {"services": {"demo": {"checks": {"demo": check("up")}}, "flags": {"checks": {"flags": check("up")}}},
              "dependencies": {"postgres": {"checks": {"postgres": check("up", "warn", message="slow")}}}}
    found = {c.name: c for c in components(system=system, sla=None, incidents=[
        incident("demo", severity="critical"), incident("shop", status="resolved"), incident("flags", status="mitigated")])}
    assert [(c.group, c.name) for c in found.values()] == [
        ("Application", "demo"), ("Safeguard", "flags"), ("Dependencies", "postgres")]
    assert found["demo"].state == "major_outage"        # the probe passes, a critical incident is open
    assert found["flags"].state == "degraded"           # mitigated, not resolved
    assert "shop" not in found                          # not probed, no open incident: not a component
    unprobed = components(system=system, sla=None, incidents=[incident("shop", severity="minor")])
    assert [(c.name, c.state, c.detail) for c in unprobed if c.name == "shop"] == [
        ("shop", "degraded", "not probed by the health service")]
    assert found["postgres"].state == "degraded" and found["postgres"].detail == "postgres: slow"


def test_budget_in_words() -> None:
    b = {"objective": 0.999, "availability": 0.99953, "period_days": 30, "budget_remaining_ratio": 0.53}
    assert budget_text({"requests": b}) == ("availability 99.953 % over 30 days (objective 99.9 %), "
                                            "53 % of the error budget left")
    assert budget_text({"probes": {**b, "availability": None, "budget_remaining_ratio": -0.2}}) == (
        "no traffic over 30 days (objective 99.9 %), 0 % of the error budget left")
    assert budget_text({}) is None
