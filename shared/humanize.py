"""Numbers as people read them, for titles, notices and pages: "error rate 15.7 % > 5 %", not
"0.156997 > 0.05". One place that knows each trigger's unit (see services/sla/service.py)."""

from __future__ import annotations

__all__ = ["percent", "duration_ms", "describe_trigger", "describe_clear"]


def _trim(x: float, digits: int) -> str:
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:.0f}"


def percent(fraction: float, digits: int = 1) -> str:
    """0.156997 -> "15.7 %", 0.05 -> "5 %"."""
    return f"{_trim(fraction * 100, digits)} %"


def duration_ms(ms: float) -> str:
    """6234.0 -> "6.23 s", 5000 -> "5 s", 812.4 -> "812 ms"."""
    return f"{_trim(ms / 1000, 2)} s" if ms >= 1000 else f"{ms:.0f} ms"


def _pair(trigger: str, value: float, threshold: float) -> tuple[str, str, str]:
    """(what, value, threshold) in the trigger's unit."""
    if trigger == "error_rate_high":
        return "error rate", percent(value), percent(threshold)
    if trigger == "latency_high":
        return "response time", duration_ms(value), duration_ms(threshold)
    if trigger == "memory_high":
        return "memory", f"{_trim(value, 1)} %", f"{_trim(threshold, 1)} %"
    if trigger == "budget_burn":
        return "error budget burn", f"{_trim(value, 2)}x", f"{_trim(threshold, 2)}x the page rate"
    return trigger.replace("_", " "), f"{value:g}", f"{threshold:g}"


def describe_trigger(trigger: str, value: float, threshold: float) -> str:
    """The condition that fired: "error rate 15.7 % > 5 %", "database connection lost"."""
    if trigger == "db_connection_lost":
        return "database connection lost"
    if trigger == "unresponsive":
        return f"not answering its health checks ({value:g} failed in a row)"
    what, v, t = _pair(trigger, value, threshold)
    return f"{what} {v} > {t}"


def describe_clear(trigger: str, value: float, threshold: float) -> str:
    """The condition that cleared it: "error rate 0.4 % <= 2.5 %", "database connection back"."""
    if trigger == "db_connection_lost":
        return "database connection back"
    if trigger == "unresponsive":
        return "answering its health checks again"
    what, v, t = _pair(trigger, value, threshold)
    return f"{what} {v} <= {t}"
