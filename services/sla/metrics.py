"""Prometheus text exposition (format 0.0.4) of the SLA snapshots and the processor's counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["render", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4"  # UTF-8 is the format's default; aiohttp refuses a charset here

_HELP = {
    "sla_error_ratio": ("gauge", "5xx ratio over the error-rate trigger window"),
    "sla_requests_in_window": ("gauge", "Requests in the error-rate trigger window"),
    "sla_latency_milliseconds": ("gauge", "Response time quantiles over the latency trigger window"),
    "sla_memory_percent": ("gauge", "Latest memory use of an instance"),
    "sla_db_pool_connected": ("gauge", "1 when the instance's pool reports connected"),
    "sla_page_load_p95_milliseconds": ("gauge", "Page load p95 over the page-load window"),
    "sla_availability_ratio": ("gauge", "Availability over the budget period"),
    "sla_budget_remaining_ratio": ("gauge", "Error budget left over the period"),
    "sla_budget_remaining_minutes": ("gauge", "Error budget left, minutes"),
    "sla_burn_rate": ("gauge", "Error budget burn rate per window"),
    "sla_trigger_active": ("gauge", "1 while a trigger episode is open"),
    "sla_events_total": ("counter", "Records consumed, by topic"),
    "sla_dead_lettered_total": ("counter", "Records sent to the DLQ, by topic"),
    "sla_published_total": ("counter", "Events published, by type"),
    "sla_duplicates_total": ("counter", "Records dropped as already counted (replays), by topic"),
    "sla_publish_failures_total": ("counter", "Failed publish attempts, by type (triggers are sent again)"),
    "sla_triggers_unpublished": ("gauge", "Trigger events waiting in a service's outbox to be published"),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}" if labels else ""


def _samples(snapshots: Iterable[Mapping[str, Any]], counters: Mapping[str, Counter[str]],
             unpublished: Mapping[str, int]) -> Iterable[tuple[str, dict[str, str], float]]:
    for snap in snapshots:
        svc = {"service": snap["service"]}
        req = snap["requests"]
        if req["error_rate"] is not None:
            yield "sla_error_ratio", svc, req["error_rate"]
        yield "sla_requests_in_window", svc, req["count"]
        for q, v in req["latency_ms"].items():
            if v is not None:
                yield "sla_latency_milliseconds", svc | {"quantile": f"0.{q[1:]}"}, v
        for inst, mem in snap["memory"].items():
            if mem["percent"] is not None:
                yield "sla_memory_percent", svc | {"instance": inst}, mem["percent"]
        for inst, pools in snap["database"]["pools"].items():
            for pool, ok in pools.items():
                yield "sla_db_pool_connected", svc | {"instance": inst, "pool": pool}, 1.0 if ok else 0.0
        if snap["page_load"]["p95_ms"] is not None:
            yield "sla_page_load_p95_milliseconds", svc, snap["page_load"]["p95_ms"]
        for basis, b in snap["budgets"].items():
            lb = svc | {"basis": basis}
            if b.get("availability") is not None:
                yield "sla_availability_ratio", lb, b["availability"]
            yield "sla_budget_remaining_ratio", lb, b["budget_remaining_ratio"]
            yield "sla_budget_remaining_minutes", lb, b["budget_remaining_minutes"]
            for burn in b.get("burn_rates", []):
                yield "sla_burn_rate", lb | {"window": burn["window"]}, burn["rate"]
        for trigger, t in snap["triggers"].items():
            yield "sla_trigger_active", svc | {"trigger": trigger}, 1.0 if t["active"] else 0.0
    for service, n in sorted(unpublished.items()):
        yield "sla_triggers_unpublished", {"service": service}, float(n)
    for name, label in (("sla_events_total", "topic"), ("sla_dead_lettered_total", "topic"), ("sla_published_total", "type"),
                        ("sla_duplicates_total", "topic"), ("sla_publish_failures_total", "type")):
        for value, n in sorted(counters.get(name, Counter()).items()):
            yield name, {label: value}, float(n)


def render(snapshots: Iterable[Mapping[str, Any]], counters: Mapping[str, Counter[str]], *,
           unpublished: Mapping[str, int] | None = None) -> str:
    by_name: dict[str, list[str]] = {}
    for name, labels, value in _samples(snapshots, counters, unpublished or {}):
        by_name.setdefault(name, []).append(f"{name}{_labels(labels)} {float(value)!r}")
    lines: list[str] = []
    for name, (kind, text) in _HELP.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"] + by_name.get(name, [])
    return "\n".join(lines) + "\n"
