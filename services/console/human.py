"""Numbers as people read them: "error rate 15.7 % > 5 %", not "0.156997 > 0.05"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.console.templating import millis, percent
from shared.humanize import describe_trigger

__all__ = ["trigger_text", "budget_text", "megabytes", "since"]


def _trim(number: float) -> str:
    return f"{number:.1f}".removesuffix(".0")


def _ratio(value: float) -> str:
    return f"{_trim(value * 100)} %"


def _pct_points(value: float) -> str:
    return f"{_trim(value)} %"


def _plain(value: float) -> str:
    return f"{value:g}"


def _times(value: float) -> str:
    return f"{_trim(value)}×"


_TRIGGERS: dict[str, tuple[str, Callable[[float], str]]] = {
    "error_rate_high": ("error rate", _ratio),
    "latency_high": ("p95 latency", millis),
    "memory_high": ("memory", _pct_points),
    "budget_burn": ("error budget burn rate", _times),
}


def trigger_text(trigger: str, value: float | None, threshold: float | None) -> str:
    """`error_rate_high, 0.157, 0.05` -> "error rate 15.7 % > 5 %"."""
    if trigger == "db_connection_lost":
        return "database connection lost"
    if trigger == "unresponsive":
        return "not answering its health checks" if value is None else describe_trigger(trigger, value, 0)
    label, fmt = _TRIGGERS.get(trigger, (trigger.replace("_", " "), _plain))
    if value is None:
        return label
    return f"{label} {fmt(value)}" + ("" if threshold is None else f" > {fmt(threshold)}")


def budget_text(ratio: float | None) -> str:
    """What is left of the error budget: "83.2 % left", or "exhausted (-4404 %)"."""
    if ratio is None:
        return "-"
    return f"{percent(ratio)} left" if ratio > 0 else f"exhausted ({ratio * 100:.0f} %)"


def megabytes(n: int | float | None) -> str:
    return "-" if n is None else f"{n / 1_000_000:.0f} MB"


def since(iso: str | None, *, now: datetime) -> str:
    """An ISO time as "3 min ago" (to the minute, so a live page does not change every second)."""
    if not iso:
        return "-"
    seconds = (now - datetime.fromisoformat(iso)).total_seconds()
    if seconds < 60:
        return "just now"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min ago"
    hours = minutes / 60
    return f"{hours:.0f} h ago" if hours < 48 else f"{hours / 24:.0f} days ago"
