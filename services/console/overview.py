"""The overview's data: the health service's `/api/system/status` (services, dependencies, app instances,
breakers, open incidents, active triggers and the SLA service's error budgets, all aggregated there)
shaped for the page, with every number in words a person reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.console.human import budget_text, megabytes, since, trigger_text
from services.console.templating import percent

__all__ = ["shape", "OVERALL"]

OVERALL = {
    "operational": ("ok", "All systems operational"),
    "degraded": ("warn", "Degraded"),
    "major_outage": ("bad", "Major outage"),
    "unknown": ("muted", "Starting: not every check has a verdict yet"),
}
_STATE_CLASS = {"up": "ok", "degraded": "warn", "down": "bad", "unknown": "muted"}
_BREAKER_CLASS = {"closed": "ok", "disabled": "muted", "half_open": "warn", "open": "bad", "forced_open": "bad"}


def shape(status: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """The template's context from one `/api/system/status` answer."""
    known = set(status.get("services", {})) | set(status.get("apps", {}))
    budgets = _budgets(status.get("sla", {}).get("budgets", {}), known)
    overall = status.get("status", "unknown")
    return {
        "overall": overall, "overall_class": OVERALL.get(overall, OVERALL["unknown"])[0],
        "overall_text": OVERALL.get(overall, (None, overall))[1],
        "services": _groups(status.get("services", {})), "dependencies": _groups(status.get("dependencies", {})),
        "instances": _instances(status.get("apps", {}), now=now),
        "breakers": _breakers(status.get("breakers", {})),
        "triggers": _triggers(status.get("sla", {}).get("active_triggers", []), known, now=now),
        "budgets": [b for b in budgets if b["monitored"]], "other_budgets": [b for b in budgets if not b["monitored"]],
        "incidents": [{**i, "opened": since(i.get("opened_at"), now=now)}
                      for i in status.get("incidents", {}).get("open", [])],
        "flags": _flag_counts(status.get("flags", {})),
        "notes": list(status.get("notes", [])),
        "feed_connected": bool(status.get("feed", {}).get("connected")),
    }


def _groups(groups: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, svc in groups.items():
        checks = [{"name": c, "state": chk.get("state", "unknown"), "class": _STATE_CLASS.get(chk.get("state"), "muted"),
                   "critical": chk.get("critical", False), "message": chk.get("message", ""), "kind": chk.get("kind", "")}
                  for c, chk in svc.get("checks", {}).items()]
        state = svc.get("state", "unknown")
        out.append({"name": name, "state": state, "class": _STATE_CLASS.get(state, "muted"), "checks": checks,
                    "problems": [c for c in checks if c["state"] != "up"]})
    return out


def _instances(apps: dict[str, Any], *, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for service, app in apps.items():
        for name, inst in app.get("instances", {}).items():
            mem = inst.get("memory_percent")
            pools = [f"{p['name']}: {p['size'] - p['idle']} busy / {p['size']} open of {p['max_size']}"
                     + ("" if p.get("connected", True) else " (disconnected)") for p in inst.get("pools", [])]
            rows.append({"service": service, "name": name, "pid": inst.get("pid"),
                         "memory": "-" if mem is None else f"{mem:.0f} %", "memory_high": (mem or 0) >= 90,
                         "rss": megabytes(inst.get("rss_bytes")), "pools": pools,
                         "pools_down": any(not p.get("connected", True) for p in inst.get("pools", [])),
                         "stale": inst.get("stale", False), "seen": since(inst.get("seen_at"), now=now)})
    return rows


def _breakers(breakers: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"service": service, "name": name, "state": b["state"].replace("_", " "),
             "class": _BREAKER_CLASS.get(b["state"], "muted"),
             "instances": {i: s.get("state", "closed") for i, s in b.get("instances", {}).items()}}
            for service, by_name in breakers.items() for name, b in by_name.items()]


def _triggers(triggers: list[dict[str, Any]], known: set[str], *, now: datetime) -> list[dict[str, Any]]:
    rows = [{"service": t["service"], "trigger": t["trigger"], "monitored": t["service"] in known,
             "text": trigger_text(t["trigger"], t.get("value"), t.get("threshold")),
             "since": since(t.get("fired_at"), now=now)} for t in triggers]
    return sorted(rows, key=lambda r: (not r["monitored"], r["service"], r["trigger"]))


def _budgets(budgets: dict[str, Any], known: set[str]) -> list[dict[str, Any]]:
    rows = []
    for service, b in sorted(budgets.items()):
        ratio = b.get("budget_remaining_ratio")
        minutes = b.get("budget_remaining_minutes")
        burn = b.get("burn_rates", {})
        rows.append({
            "service": service, "monitored": service in known, "left": budget_text(ratio),
            "class": "bad" if ratio is not None and ratio <= 0 else "warn" if ratio is not None and ratio < 0.25 else "ok",
            "bar": max(0.0, min(1.0, ratio or 0.0)) * 100,
            "minutes": "-" if minutes is None or minutes <= 0 else f"{minutes:.0f} min of errors",
            "availability": percent(b.get("availability"), 2), "objective": percent(b.get("objective"), 1),
            "burn_1h": burn.get("1h"), "burn_6h": burn.get("6h"), "alerts": b.get("alerts", []),
            "basis": b.get("basis", ""),
        })
    return rows


def _flag_counts(flags: dict[str, Any]) -> dict[str, int]:
    on = sum(1 for f in flags.values() if f.get("state") == "ENABLED")
    return {"total": len(flags), "on": on, "off": len(flags) - on}
