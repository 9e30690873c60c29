"""What `GET /api/sla/{service}/series` shows: a service's history for the console's charts, read from what
the SLA core already keeps (no new state in the Faust tables):

- per minute (the `rm` buckets, kept for the longest budget window under a day: 6 h by default): requests,
  error rate and the latency quantile of the trigger (p95), with the trigger thresholds to draw;
- memory per instance (`MemoryHistory`, sampled from the status value, which keeps only the trigger window);
- burn rates of 1 h, 6 h and 3 d windows and the error budget left, at each step, from the minute buckets where
  they reach back and the hour buckets (`rh`, the 30-day period) beyond, with the alert factors to draw.

Columns are lists of equal length with Unix seconds in `t`: the form uPlot takes as it is."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sla.budgets import Counts, budget_remaining, burn_rate
from services.sla.service import SlaCore
from shared.histogram import LatencySketch

__all__ = ["service_series", "MemoryHistory", "BURN_WINDOWS", "MAX_HOURS"]

BURN_WINDOWS = {"1h": 3600.0, "6h": 6 * 3600.0, "3d": 3 * 86400.0}
MAX_HOURS = 72.0
_POINTS = 360  # per chart at most


@dataclass
class MemoryHistory:
    """Memory % per (service, instance), sampled from the SLA status (its `mem` list keeps only the
    trigger window). In memory: a restarted worker starts a new history (documented)."""

    keep_s: float = 6 * 3600.0
    max_instances: int = 1024
    points: dict[tuple[str, str], deque[tuple[float, float]]] = field(default_factory=dict)

    def sample(self, core: SlaCore) -> int:
        """Take the reports newer than the last one kept; returns how many were added."""
        added = 0
        for service, st in list(core.status.items()):
            for instance, inst in (st or {}).get("instances", {}).items():
                kept = self.points.setdefault((service, instance), deque())
                for t, pct in inst.get("mem", ()):
                    if not kept or t > kept[-1][0]:
                        kept.append((t, pct))
                        added += 1
                while kept and kept[0][0] < kept[-1][0] - self.keep_s:
                    kept.popleft()
        if len(self.points) > self.max_instances:  # the least recently reported go first
            newest = sorted(self.points, key=lambda k: self.points[k][-1][0] if self.points[k] else 0.0)
            for key in newest[:len(self.points) - self.max_instances]:
                del self.points[key]
        return added

    def of(self, service: str, *, since: float) -> dict[str, list[tuple[float, float]]]:
        return {inst: [p for p in pts if p[0] >= since] for (svc, inst), pts in self.points.items()
                if svc == service}


class _Prefix:
    """Sums of (good, total) buckets over `[start, end)` in O(log n): bucket starts and running sums."""

    def __init__(self, buckets: Iterable[tuple[float, Counts]]) -> None:
        self.starts: list[float] = []
        self.good, self.total = [0], [0]
        for start, c in sorted(buckets, key=lambda b: b[0]):
            self.starts.append(start)
            self.good.append(self.good[-1] + c.good)
            self.total.append(self.total[-1] + c.total)

    @property
    def first(self) -> float | None:
        return self.starts[0] if self.starts else None

    def between(self, start: float, end: float) -> Counts:
        i, j = bisect.bisect_left(self.starts, start), bisect.bisect_left(self.starts, end)
        return Counts(self.good[j] - self.good[i], self.total[j] - self.total[i])


def _steps(now: float, hours: float) -> list[float]:
    step = max(60.0, hours * 3600 / _POINTS)
    first = (now - hours * 3600) // step * step + step
    return [first + k * step for k in range(int((now - first) // step) + 1)]


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def _minutes(core: SlaCore, service: str, *, now: float, since: float) -> dict[str, list[Any]]:
    q = core.policy.triggers.latency_quantile
    out: dict[str, list[Any]] = {"t": [], "requests": [], "error_rate": [], "latency_ms": []}
    for minute, (good, total, total_ms, wire) in core.series(service, "rm", since=int(since // 60)):
        if minute * 60 >= now:
            continue
        out["t"].append(minute * 60)
        out["requests"].append(total)
        out["error_rate"].append(_round((total - good) / total) if total else None)
        sketch = LatencySketch.from_wire(wire, total_ms)
        out["latency_ms"].append(_round(sketch.quantile(q), 1) if sketch.count else None)
    return out


def _budgets(core: SlaCore, service: str, *, now: float, hours: float) -> dict[str, Any]:
    policy = core.policy.budget
    minutes = _Prefix((m * 60.0, Counts(v[0], v[1])) for m, v in core.series(service, "rm"))
    hourly = _Prefix((h * 3600.0, Counts(v[0], v[1])) for h, v in core.series(service, "rh"))

    reach = minutes.first
    # the minutes hold everything when the hour buckets start no earlier than the minutes' hour (a young service)
    complete = reach is not None and (hourly.first is None or hourly.first >= reach - reach % 3600)

    def counts(t: float, window: float) -> Counts:
        fits = reach is not None and t - window >= reach and window < 86400
        return (minutes if complete or fits else hourly).between(t - window, t)

    steps = _steps(now, hours)
    burn = {name: [_round(burn_rate(counts(t, w), objective=policy.objective), 3) for t in steps]
            for name, w in BURN_WINDOWS.items()}
    left = [_round(budget_remaining(hourly.between(t - policy.period, t), objective=policy.objective,
                                    period=timedelta(seconds=policy.period))[0], 5) for t in steps]
    return {"t": steps, "burn": burn, "budget_remaining": left}


def service_series(core: SlaCore, service: str, *, hours: float, memory: MemoryHistory) -> dict[str, Any] | None:
    """The charts' data over the last `hours` (at most MAX_HOURS; the per-minute series reach back as far
    as the minute buckets are kept), or None for a service the SLA processor has not seen."""
    st = core.status.get(service)
    if st is None or st.get("watermark") is None:
        return None
    # the clock, not the watermark: a service that went quiet shows its quiet part, not its last busy hour
    now, hours = max(float(st["watermark"]), core.clock()), min(max(hours, 1 / 60), MAX_HOURS)
    since = now - hours * 3600
    t = core.policy.triggers
    mem = memory.of(service, since=since)
    alerts = [{"name": a.name, "long": a.long, "short": a.short, "factor": a.factor, "severity": a.severity}
              for a in core.policy.budget.alerts]
    return {
        "service": service, "as_of": datetime.fromtimestamp(now, UTC).isoformat(),
        "last_data_at": datetime.fromtimestamp(st["watermark"], UTC).isoformat(), "hours": hours,
        "objective": core.policy.budget.objective, "period_days": core.policy.budget.period / 86400,
        "thresholds": {"error_rate": t.error_rate_high.threshold, "latency_ms": t.latency_high.threshold,
                       "latency_quantile": t.latency_quantile, "memory_percent": t.memory_high.threshold},
        "minutes": _minutes(core, service, now=now, since=since),
        "memory": {inst: {"t": [p[0] for p in pts], "percent": [_round(p[1], 2) for p in pts]}
                   for inst, pts in sorted(mem.items())},
        "budget": _budgets(core, service, now=now, hours=hours) | {"alerts": alerts},
    }
