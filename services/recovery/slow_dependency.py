"""Which breaker `latency_high` should open: the dependency the SDK measured as slow, never a guess.

The apps report, every few seconds, each guarded dependency's calls over the last half minute
(`ProcessStatsReported.dependencies`: slow-call rate against the breaker's own slow threshold, hung
calls included). Slow responses with every dependency fast (a slow handler, a CPU-bound endpoint) are
not a breaker's business: opening one would turn slow answers into failures (issue 14: a handler
delay forced the postgres breaker open, and the 503s then fired error_rate_high and killed features).

Also answers the other half of that story: errors that are the fast failures of a breaker recovery
forced open are not a reason to kill features.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.recovery.ports import HealthReports, Report
from shared.events import CircuitBreakerStateChanged, DependencyStats, ProcessStatsReported

__all__ = ["SlowDependency", "slowest", "choose_breaker", "forced_open", "reports_dependencies", "NO_SLOW_DEPENDENCY",
           "MIN_SLOW_RATE", "MIN_SLOW_CALLS", "WAIT_S"]

NO_SLOW_DEPENDENCY = "no slow dependency: not opening a breaker"
MIN_SLOW_RATE = 50.0  # % of a dependency's calls over its slow threshold (resilience4j's slowCallRateThreshold)
MIN_SLOW_CALLS = 3
WAIT_S = 12.0  # for a report after the trigger: two of the SDK's 5 s reports and some
_LOOKBACK = timedelta(seconds=15)


@dataclass(frozen=True)
class SlowDependency:
    name: str
    instance: str
    stats: DependencyStats

    def describe(self) -> str:
        s = self.stats
        return (f"{self.name} is the slow dependency on {self.instance}: {s.slow_call_rate:g}% of {s.calls} calls "
                f"over {s.slow_threshold_ms:g} ms in {s.window_seconds:g}s (mean {s.mean_ms:g} ms, max {s.max_ms:g} ms)")


def _latest(reports: Iterable[Report], *, service: str, since: datetime) -> list[ProcessStatsReported]:
    last: dict[str, ProcessStatsReported] = {}
    for e in reports:
        if isinstance(e, ProcessStatsReported) and e.service == service and e.time >= since:
            if e.instance not in last or e.time >= last[e.instance].time:
                last[e.instance] = e
    return list(last.values())


def slowest(reports: Iterable[ProcessStatsReported]) -> SlowDependency | None:
    """The dependency with the highest slow-call rate at or over MIN_SLOW_RATE (MIN_SLOW_CALLS at least)."""
    found = [SlowDependency(d.name, r.instance, d) for r in reports for d in r.dependencies
             if d.slow_calls >= MIN_SLOW_CALLS and d.slow_call_rate >= MIN_SLOW_RATE]
    return max(found, key=lambda s: (s.stats.slow_call_rate, s.stats.mean_ms), default=None)


def reports_dependencies(reports: Iterable[Report], *, service: str) -> bool:
    """Whether `service` reports dependency stats at all: an app on an SDK without them (the Node demo's, an
    older Python one) gets the policy's breaker, as before; one that reports them is never guessed for."""
    return any(isinstance(e, ProcessStatsReported) and e.service == service and e.dependencies for e in reports)


async def choose_breaker(watch: HealthReports, *, service: str, now: datetime) -> SlowDependency | None:
    """From each instance's last report; if none shows a slow dependency, once more after the next report
    (within WAIT_S). That one is conclusive: the trigger fires after responses were slow for the window and
    the hold, so a dependency behind them has had calls in flight past its slow threshold by then."""
    found = slowest(_latest(watch.seen, service=service, since=now - _LOOKBACK))
    if found is not None:
        return found

    def fresh(e: Report) -> bool:
        return isinstance(e, ProcessStatsReported) and e.service == service
    if await watch.wait_for(fresh, since=now, timeout_s=WAIT_S) is None:
        return None
    return slowest(_latest(watch.seen, service=service, since=now - _LOOKBACK))


def forced_open(reports: Iterable[Report], *, service: str, since: datetime) -> list[str]:
    """The breakers of `service` whose last known state (since `since`) on some instance is forced_open:
    only a recovery command (or an operator's run) forces a breaker open."""
    last: dict[tuple[str, str], tuple[datetime, str]] = {}
    for e in reports:
        if e.service != service or e.time < since:
            continue
        states = {e.breaker: e.to_state} if isinstance(e, CircuitBreakerStateChanged) else e.breakers
        for name, state in states.items():
            key = (e.instance, name)
            if key not in last or e.time >= last[key][0]:
                last[key] = (e.time, state)
    return sorted({name for (_, name), (_, state) in last.items() if state == "forced_open"})
