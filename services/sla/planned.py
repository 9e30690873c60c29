"""Maintenance windows scheduled through the notifier's API, per service: `{window_id: [start, end]}` (epoch
seconds). Pure: the core keeps one such dict per service in its `maintenance` table, and a request or probe of a
service inside one of its windows stays out of availability and budgets, like a static window of the policy."""

from __future__ import annotations

from typing import Any

__all__ = ["plan", "covers"]


def plan(windows: dict[str, Any] | None, *, window_id: str, start: float, end: float,
         forget_before: float) -> dict[str, list[float]]:
    """`windows` with `window_id` covering [start, end) (dropped when `end <= start`: called off), and without the
    windows that ended before `forget_before` (no record that old is counted any more)."""
    out = {k: v for k, v in (windows or {}).items() if k != window_id and v[1] >= forget_before}
    if end > start and end >= forget_before:
        out[window_id] = [start, end]
    return out


def covers(windows: dict[str, Any] | None, ts: float) -> bool:
    return any(start <= ts < end for start, end in (windows or {}).values())
