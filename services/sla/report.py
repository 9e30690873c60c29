"""What `GET /api/sla` shows: a JSON-ready snapshot of one service, from the core's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.sla.detection import TriggerState
from services.sla.policy import SlaPolicy
from services.sla.service import TRIGGERS, SlaCore
from services.sla.state import LOAD_MINUTES, REQUEST_MINUTES, Status
from shared.histogram import LatencySketch

__all__ = ["service_snapshot", "overview"]

_LAST = 300.0


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def _quantiles(sketch: LatencySketch) -> dict[str, float | None]:
    return {f"p{q}": sketch.quantile(q / 100) for q in (50, 95, 99)}


def service_snapshot(core: SlaCore, service: str) -> dict[str, Any] | None:
    st = core.status.get(service)
    if st is None:
        return None
    now = st["watermark"]
    triggers = {k: TriggerState.from_dict(st["triggers"].get(k)) for k in TRIGGERS}
    return {
        "service": service,
        "as_of": _iso(now),
        "requests": _requests(core, service, now=now),
        "last_5m": _last_5m(core, service, now=now),
        "page_load": _page_load(core, service, now=now),
        **_health(core.policy, st),
        "budgets": st["budgets"],
        "triggers": {
            k: {"phase": s.phase, "active": s.active, "episode_id": s.episode_id if s.active else None,
                "fired_at": _iso(s.fired_at) if s.active else None, "value": s.value, "samples": s.samples}
            for k, s in triggers.items()
        },
        "active_triggers": sorted(k for k, s in triggers.items() if s.active),
    }


def _requests(core: SlaCore, service: str, *, now: float) -> dict[str, Any]:
    """The trigger windows: error rate and latency as the triggers see them."""
    rule, latency = core.policy.triggers.error_rate_high, core.policy.triggers.latency_high
    count, errors, _ = core.request_window(service, now=now, window=rule.window)
    lat_count, _, lat_sketch = core.request_window(service, now=now, window=latency.window)
    return {
        "window_seconds": rule.window, "count": count, "errors": errors,
        "error_rate": errors / count if count else None,
        "latency_window_seconds": latency.window, "latency_samples": lat_count,
        "latency_ms": _quantiles(lat_sketch),
    }


def _last_5m(core: SlaCore, service: str, *, now: float) -> dict[str, Any]:
    recent = LatencySketch()
    good = total = 0
    for g, t, total_ms, wire in core.minute_window(service, REQUEST_MINUTES, now=now, window=_LAST):
        good, total = good + g, total + t
        recent.merge(LatencySketch.from_wire(wire, total_ms))
    objective = core.policy.objectives.response_ms
    return {
        "count": total, "error_rate": (total - good) / total if total else None,
        "latency_ms": _quantiles(recent),
        "within_response_objective": 1 - recent.count_above(objective) / recent.count if recent.count else None,
    }


def _page_load(core: SlaCore, service: str, *, now: float) -> dict[str, Any]:
    policy = core.policy
    pages = LatencySketch()
    for total_ms, wire in core.minute_window(service, LOAD_MINUTES, now=now, window=policy.pageload_window):
        pages.merge(LatencySketch.from_wire(wire, total_ms))
    return {
        "window_seconds": policy.pageload_window, "count": pages.count, "p95_ms": pages.quantile(0.95) if pages.count else None,
        "objective_ms": policy.objectives.page_load_ms,
    }


def _health(policy: SlaPolicy, st: Status) -> dict[str, Any]:
    """`memory` and `database`: the instances' last process stats and the postgres probes."""
    db_probes = {k: v for k, v in st["probes"].items() if v["kind"] == "postgres"}
    return {
        "memory": {
            name: {"percent": inst["mem"][-1][1] if inst["mem"] else None, "rss_bytes": inst.get("rss_bytes"), "at": _iso(inst["at"])}
            for name, inst in st["instances"].items()
        },
        "database": {
            "pools": {name: inst["pools"] for name, inst in st["instances"].items() if inst["pools"]},
            "probes": {k: {"state": v["state"], "latency_ms": v["latency_ms"], "at": _iso(v["at"])} for k, v in db_probes.items()},
            "query_latency_ms": max((v["latency_ms"] for v in db_probes.values()), default=None),
            "objective_ms": policy.objectives.db_query_ms,
        },
    }


def overview(core: SlaCore) -> dict[str, Any]:
    services = [s for s in (service_snapshot(core, name) for name in core.services()) if s is not None]
    return {
        "objective": core.policy.budget.objective,
        "period_days": core.policy.budget.period / 86400,
        "services": services,
        "active_triggers": [{"service": s["service"], "trigger": t} for s in services for t in s["active_triggers"]],
    }
