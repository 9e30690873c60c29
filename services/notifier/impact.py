"""An incident's impact for its post-incident report, read from the SLA service when it resolves: requests
failed and the share of the error budget the incident spent (issue 14).

The SLA processor already keeps per-minute requests and error rates (`GET /api/sla/{service}/series`, the
console's charts) and the period's requests (`GET /api/sla/{service}`, the budget report); the notifier asks
once, at resolution, and keeps the figures in the report. The span is from the minute before the incident opened (the trigger's window
started before it) to its resolution. Minutes are the SLA's own buckets, so a figure is as precise as a
minute; beyond the series' reach (6 h of minutes by default) the report says the figure is partial. When the
SLA service does not answer in time the report says "not known" and the resolution goes on.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

__all__ = ["Impact", "ImpactSource", "SlaImpact", "impact_from_series"]

log = logging.getLogger(__name__)
_MAX_HOURS = 72.0  # what the series endpoint serves at most


@dataclass(frozen=True, slots=True)
class Impact:
    requests: int  # requests seen in the span
    failed: int  # of which failed (5xx)
    budget_consumed: float | None  # share of the period's error budget spent in the span (0.05 = 5 %)
    period_days: float | None
    partial: bool = False  # the span reaches back beyond the minute series

    def lines(self) -> list[str]:
        part = " (the part within the SLA's minute series)" if self.partial else ""
        failed = f"- Requests failed: {self.failed:,} of {self.requests:,}{part}"
        if self.budget_consumed is None:
            return [failed, "- Error budget consumed: not known (no budget reported for the span)"]
        days = f" of the {self.period_days:g}-day budget" if self.period_days else ""
        return [failed, f"- Error budget consumed: {self.budget_consumed * 100:.1f} %{days}"]


class ImpactSource(Protocol):
    async def impact(self, *, service: str, start: datetime, end: datetime) -> Impact | None: ...


def impact_from_series(series: dict[str, Any], *, budget: dict[str, Any] | None, start: datetime,
                       end: datetime) -> Impact:
    """Sum the minute buckets that start in [start - 60 s, end]. The budget spent is the failures over the
    period's error budget in requests, (1 - objective) x the period's requests (`budget`: the SLA's
    `requests` budget report; the Google SRE workbook's and Sloth's definition)."""
    lo, hi = start.timestamp() - 60.0, end.timestamp()
    minutes = series.get("minutes") or {}
    total = failed = 0
    ts = minutes.get("t") or []
    for t, n, rate in zip(ts, minutes.get("requests") or [], minutes.get("error_rate") or [], strict=False):
        if lo <= t <= hi and n:
            total += int(n)
            failed += int(round(n * (rate or 0.0)))
    allowed = None if not budget else (1.0 - float(budget.get("objective", 1.0))) * float(budget.get("total", 0))
    return Impact(requests=total, failed=failed, budget_consumed=failed / allowed if allowed else None,
                  period_days=(budget or {}).get("period_days"), partial=not ts or ts[0] > lo + 60.0)


class SlaImpact:
    """`ImpactSource` over the SLA service's HTTP API (the status page's `sla_url`)."""

    def __init__(self, *, http: httpx.AsyncClient, sla_url: str, timeout_s: float = 2.0) -> None:
        self.http, self.sla_url, self.timeout_s = http, sla_url.rstrip("/"), timeout_s

    async def impact(self, *, service: str, start: datetime, end: datetime) -> Impact | None:
        hours = min(max(math.ceil((end - start).total_seconds() / 3600.0 + 0.1), 1), _MAX_HOURS)
        base = f"{self.sla_url}/api/sla/{service}"
        try:
            series, snapshot = await asyncio.gather(
                self.http.get(f"{base}/series", params={"hours": hours}, timeout=self.timeout_s),
                self.http.get(base, timeout=self.timeout_s))
        except httpx.HTTPError as exc:
            log.warning("impact of %s not known: the SLA service did not answer (%s)", service, type(exc).__name__)
            return None
        if series.status_code != 200:
            log.info("impact of %s not known: the SLA service answered %s", service, series.status_code)
            return None
        budgets = snapshot.json().get("budgets") or {} if snapshot.status_code == 200 else {}
        return impact_from_series(series.json(), budget=budgets.get("requests"), start=start, end=end)
