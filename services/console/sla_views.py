"""An SLA snapshot in words for the SLA page: "error rate 15.7 % > 5 %", "p95 latency 812 ms", "memory 43 %"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.console.human import trigger_text
from shared.humanize import duration_ms, percent

__all__ = ["now_lines"]


def _versus(value: float | None, threshold: float, fmt: Callable[[float], str]) -> tuple[str, str]:
    """("15.7 % > 5 %", "bad") or ("0.4 %, trigger above 5 %", "ok")."""
    if value is None:
        return "no data", "muted"
    if value > threshold:
        return f"{fmt(value)} > {fmt(threshold)}", "bad"
    return f"{fmt(value)}, trigger above {fmt(threshold)}", "ok"


def _points(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") + " %"


def now_lines(snap: dict[str, Any], thresholds: dict[str, Any]) -> list[dict[str, str]]:
    """One line per measure the triggers watch, the burn rates of the last budget reports, what is firing."""
    req = snap.get("requests", {})
    mems = [m["percent"] for m in snap.get("memory", {}).values() if m.get("percent") is not None]
    quantile = round(float(thresholds.get("latency_quantile", 0.95)) * 100)
    rows: list[tuple[str, float | None, float, Callable[[float], str]]] = [
        (f"error rate (last {req.get('window_seconds', 5):g} s)", req.get("error_rate"),
         float(thresholds.get("error_rate", 0.05)), percent),
        (f"p{quantile} latency", req.get("latency_ms", {}).get(f"p{quantile}"),
         float(thresholds.get("latency_ms", 5000)), duration_ms),
        ("memory (highest instance)", max(mems) if mems else None, float(thresholds.get("memory_percent", 90)),
         _points),
    ]
    lines = []
    for what, value, threshold, fmt in rows:
        text, state = _versus(value, threshold, fmt)
        lines.append({"what": what, "text": text, "state": state})
    for basis, report in sorted(snap.get("budgets", {}).items()):
        burns = ", ".join(f"{b['window']} {b['rate']:.1f}×" for b in report.get("burn_rates", []))
        lines.append({"what": f"burn rates ({basis})", "text": burns or "no events",
                      "state": "bad" if report.get("alerts") else "ok"})
    triggers = snap.get("triggers", {})
    for name in snap.get("active_triggers", []):
        lines.append({"what": "firing", "text": trigger_text(name, triggers.get(name, {}).get("value"), None),
                      "state": "bad"})
    return lines
