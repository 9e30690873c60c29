"""Components of the status page from the health service's `/api/system/status` and the SLA service's
`/api/sla` (pure functions over the two JSON documents, no framework imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.notifier.models import Incident

__all__ = ["Component", "ComponentState", "RANK", "LABEL", "components", "incident_state", "worst",
           "SAFEGUARD_SERVICES"]

ComponentState = Literal["operational", "under_maintenance", "degraded", "partial_outage", "major_outage", "unknown"]
RANK: dict[str, int] = {"unknown": -1, "operational": 0, "under_maintenance": 1, "degraded": 2, "partial_outage": 3,
                        "major_outage": 4}
LABEL = {"operational": "Operational", "under_maintenance": "Under maintenance", "degraded": "Degraded performance",
         "partial_outage": "Partial outage", "major_outage": "Major outage", "unknown": "No data"}
SAFEGUARD_SERVICES = frozenset({"flags", "health", "sla", "recovery", "notifier", "intake", "haproxy"})
GROUPS = ("Application", "Safeguard", "Dependencies")


@dataclass(frozen=True)
class Component:
    name: str
    group: str
    state: ComponentState
    detail: str
    budget: str | None = None


def worst(states: list[str]) -> ComponentState:
    known = [s for s in states if s != "unknown"]
    if not known:
        return "unknown"
    top = max(known, key=RANK.__getitem__)
    return top  # type: ignore[return-value]


def checks_state(checks: dict[str, dict[str, Any]]) -> tuple[ComponentState, str]:
    """Down everywhere or a critical check down: major; some down: partial; a warning: degraded."""
    known = {n: c for n, c in checks.items() if c.get("state") in ("up", "down")}
    if not known:
        return "unknown", "not probed yet"
    down = [n for n, c in known.items() if c["state"] == "down"]
    if down and (len(down) == len(checks) or any(known[n].get("critical") for n in down)):
        return "major_outage", f"down: {', '.join(sorted(down))}"
    if down:
        return "partial_outage", f"{len(checks) - len(down)} of {len(checks)} checks up; down: {', '.join(sorted(down))}"
    warned = sorted(n for n, c in known.items() if c.get("status") != "pass")
    if warned:
        return "degraded", "; ".join(f"{n}: {known[n].get('message') or known[n].get('status')}" for n in warned)
    return "operational", f"{len(known)} of {len(checks)} checks passing" if len(known) < len(checks) else "all checks passing"


def incident_state(inc: Incident) -> ComponentState:
    if inc.status == "resolved":
        return "operational"
    return "major_outage" if inc.severity == "critical" and inc.status == "open" else "degraded"


def _percent(x: float) -> str:
    return f"{x * 100:.3f}".rstrip("0").rstrip(".") + " %"


def budget_text(budgets: dict[str, dict[str, Any]]) -> str | None:
    """The SLA budget of the requests basis if there is one, else the probes basis, in human words."""
    b = budgets.get("requests") or budgets.get("probes")
    if not b:
        return None
    avail = "no traffic" if b.get("availability") is None else f"availability {_percent(b['availability'])}"
    return (f"{avail} over {b.get('period_days', 30):g} days (objective {_percent(b['objective'])}), "
            f"{_percent(max(b['budget_remaining_ratio'], 0.0))} of the error budget left")


def _group(name: str, role: str) -> str:
    if role == "dependency":
        return "Dependencies"
    return "Safeguard" if name in SAFEGUARD_SERVICES else "Application"


def components(*, system: dict[str, Any] | None, sla: dict[str, Any] | None,
               incidents: list[Incident], maintenance: dict[str, str] | None = None) -> list[Component]:
    """Every service and dependency the health service probes, plus any service with an open (or mitigated)
    incident or in maintenance; each component's state is the worse of its checks and its open incidents,
    except that a component in a maintenance window in progress (`maintenance`: name -> what to say) is
    "under maintenance" whatever its checks say (the work explains them)."""
    budgets = {s["service"]: s.get("budgets") or {} for s in (sla or {}).get("services", [])}
    by_incident: dict[str, list[ComponentState]] = {}
    for inc in incidents:
        if inc.status != "resolved":
            by_incident.setdefault(inc.service, []).append(incident_state(inc))
    found: dict[str, Component] = {}
    for role, key in (("service", "services"), ("dependency", "dependencies")):
        for name, svc in sorted(((system or {}).get(key) or {}).items()):
            state, detail = checks_state(svc.get("checks") or {})
            found[name] = Component(name, _group(name, role), state, detail, budget_text(budgets.get(name, {})))
    for name, states in by_incident.items():
        base = found.get(name) or Component(name, _group(name, "service"), "unknown", "not probed by the health service",
                                            budget_text(budgets.get(name, {})))
        found[name] = Component(base.name, base.group, worst([base.state, *states]),
                                base.detail, base.budget)
    for name, note in (maintenance or {}).items():
        base = found.get(name) or Component(name, _group(name, "service"), "unknown", "",
                                            budget_text(budgets.get(name, {})))
        found[name] = Component(name, base.group, "under_maintenance", f"{note}{'; ' + base.detail if base.detail else ''}",
                                base.budget)
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted(found.values(), key=lambda c: (order[c.group], c.name))
