"""Error-budget maths: pure functions, no framework, no clock.

Availability is good / total events (requests that did not fail, probes that found the
target up). The error budget is the share of events allowed to be bad, `1 - objective`;
the burn rate is how fast a window spends it (1.0 = exactly on schedule for the period).
Multiwindow alerts follow the Google SRE workbook, chapter "Alerting on SLOs".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TypeVar

__all__ = [
    "Counts", "allowed_downtime", "availability", "error_ratio", "burn_rate", "budget_remaining",
    "window_counts", "firing_alerts", "AlertRule",
]


@dataclass(frozen=True)
class Counts:
    good: int = 0
    total: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.good + other.good, self.total + other.total)

    @property
    def bad(self) -> int:
        return self.total - self.good


class AlertRule(Protocol):
    """What `firing_alerts` needs of a rule (policy.BurnAlertRule satisfies it)."""

    @property
    def name(self) -> str: ...
    @property
    def long(self) -> float: ...
    @property
    def short(self) -> float: ...
    @property
    def factor(self) -> float: ...


def allowed_downtime(*, objective: float, period: timedelta) -> timedelta:
    """Downtime the objective allows over `period`: 99.9 % -> 43.2 min / 30 days, 8.76 h / 365 days."""
    if not 0 < objective < 1:
        raise ValueError(f"objective must be within (0, 1), got {objective}")
    return period * (1 - objective)


def availability(counts: Counts) -> float | None:
    """good / total, or None without events (no traffic is not downtime)."""
    return counts.good / counts.total if counts.total else None


def error_ratio(counts: Counts) -> float | None:
    return counts.bad / counts.total if counts.total else None


def burn_rate(counts: Counts, *, objective: float) -> float | None:
    """error ratio / allowed error ratio; None without events."""
    ratio = error_ratio(counts)
    return None if ratio is None else ratio / (1 - objective)


def budget_remaining(counts: Counts, *, objective: float, period: timedelta) -> tuple[float, float]:
    """(ratio, minutes) of the period's error budget left; negative once overspent."""
    ratio = error_ratio(counts)
    left = 1.0 if ratio is None else 1.0 - ratio / (1 - objective)
    return left, left * allowed_downtime(objective=objective, period=period).total_seconds() / 60


def window_counts(buckets: Iterable[tuple[float, Counts]], *, now: float, windows: Sequence[float]) -> dict[float, Counts]:
    """Sum `(bucket_start, counts)` over each trailing window `[now - w, now)`, in one pass.

    A bucket belongs to a window when it starts inside it, so a window is as precise as
    the bucket size (minutes for windows up to hours, hours beyond).
    """
    good = dict.fromkeys(windows, 0)
    total = dict.fromkeys(windows, 0)
    for start, counts in buckets:
        if start >= now:
            continue
        for w in windows:
            if start >= now - w:
                good[w] += counts.good
                total[w] += counts.total
    return {w: Counts(good[w], total[w]) for w in windows}


R = TypeVar("R", bound=AlertRule)


def firing_alerts(
    rules: Iterable[R], *, burn: Mapping[float, float | None], short_counts: Mapping[float, Counts],
    min_events: int,
) -> list[R]:
    """Rules whose long and short windows both burn at >= factor (short window with >= min_events)."""
    firing = []
    for rule in rules:
        long_rate, short_rate = burn.get(rule.long), burn.get(rule.short)
        if long_rate is None or short_rate is None:
            continue
        if short_counts.get(rule.short, Counts()).total < min_events:
            continue
        if long_rate >= rule.factor and short_rate >= rule.factor:
            firing.append(rule)
    return firing
