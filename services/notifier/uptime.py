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
_DAY = 86400.0


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


def _worse(a: str | None, b: str | None) -> str | None:
    return max(a, b, key=lambda s: _RANK.get(s or "", 0)) if a and b else a or b


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Disjoint intervals, sorted: overlapping incidents count once."""
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        elif hi > lo:
            out.append((lo, hi))
    return out


def _worst_by_day(outages: list[Outage], *, now: datetime, first: date) -> dict[date, str]:
    worst: dict[date, str] = {}
    for o in outages:
        d, last = max(o.start.astimezone(UTC).date(), first), (o.end or now).astimezone(UTC).date()
        while d <= last:
            worst[d] = _worse(worst.get(d), o.severity) or o.severity
            d += timedelta(days=1)
    return worst


def daily_uptime(*, outages: list[Outage], since: datetime | None, now: datetime, days: int = DAYS) -> list[Day]:
    """One `Day` per calendar day (UTC), oldest first, ending today. `since`: when recording began."""
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    spans = [(lo.timestamp(), hi.timestamp()) for lo, hi in _merged([(o.start, o.end or now) for o in outages])]
    worst = _worst_by_day(outages, now=now, first=first)
    t0, t_now, t_since = datetime.combine(first, time(), UTC).timestamp(), now.timestamp(), (since or now).timestamp()
    out: list[Day] = []
    j = 0
    for n in range(days):
        d, start = first + timedelta(days=n), max(t0 + n * _DAY, t_since)
        end = min(t0 + (n + 1) * _DAY, t_now)
        if since is None or end <= start:
            out.append(Day(d, None, 0.0, 0.0, None))
            continue
        while j < len(spans) and spans[j][1] <= start:
            j += 1
        down, k = 0.0, j
        while k < len(spans) and spans[k][0] < end:
            down += min(spans[k][1], end) - max(spans[k][0], start)
            k += 1
        out.append(Day(d, 1 - down / (end - start), end - start, down, worst.get(d) if down else None))
    return out


def uptime_ratio(days: list[Day]) -> float | None:
    """Uptime over the observed part of the window; None when nothing was observed."""
    observed = sum(d.observed_s for d in days)
    return 1 - sum(d.down_s for d in days) / observed if observed else None
