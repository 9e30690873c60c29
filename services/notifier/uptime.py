"""Daily uptime bars from incident history (pure functions, no framework imports).

A day's uptime is the share of its observed part without an open or mitigated incident of the
component. A day the notifier was not yet recording is `None` ("no data"), never 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

__all__ = ["Outage", "Day", "daily_uptime", "uptime_ratio", "DAYS"]

DAYS = 90
_RANK = {"minor": 1, "major": 2, "critical": 3}


@dataclass(frozen=True)
class Outage:
    """An incident as an interval; `end` None while it is still open."""

    service: str
    severity: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Day:
    day: date
    uptime: float | None
    observed_s: float
    down_s: float
    worst: str | None


def _down_seconds(outages: list[Outage], *, start: datetime, end: datetime, now: datetime) -> tuple[float, str | None]:
    spans = sorted((max(o.start, start), min(o.end or now, end), o.severity) for o in outages)
    total, cursor, worst = 0.0, start, None
    for lo, hi, severity in spans:
        if hi <= lo:
            continue
        worst = max(worst or severity, severity, key=lambda s: _RANK.get(s, 0))
        lo = max(lo, cursor)
        if hi > lo:
            total += (hi - lo).total_seconds()
            cursor = hi
    return total, worst


def daily_uptime(*, outages: list[Outage], since: datetime | None, now: datetime, days: int = DAYS) -> list[Day]:
    """One `Day` per calendar day (UTC), oldest first, ending today. `since`: when recording began."""
    today = now.astimezone(UTC).date()
    out: list[Day] = []
    for back in range(days - 1, -1, -1):
        d = today - timedelta(days=back)
        day_start = datetime.combine(d, time(), UTC)
        start, end = max(day_start, since or now), min(day_start + timedelta(days=1), now)
        if since is None or end <= start:
            out.append(Day(d, None, 0.0, 0.0, None))
            continue
        observed = (end - start).total_seconds()
        down, worst = _down_seconds(outages, start=start, end=end, now=now)
        out.append(Day(d, 1 - down / observed, observed, down, worst))
    return out


def uptime_ratio(days: list[Day]) -> float | None:
    """Uptime over the observed part of the window; None when nothing was observed."""
    observed = sum(d.observed_s for d in days)
    return 1 - sum(d.down_s for d in days) / observed if observed else None
