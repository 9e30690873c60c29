"""Budget reporting: a service's minute and hour series -> `BudgetReported` per basis and budget_burn.

The maths is in `budgets.py`; this module reads the series (`state.BUDGET_SERIES`: requests and
probes) and turns the policy's windows into the report and the page-alert burn that drives the
`budget_burn` trigger.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sla import budgets
from services.sla.policy import SlaPolicy
from services.sla.state import BUDGET_SERIES, Status, counts_of
from services.sla.triggers import evaluate
from shared.events import BudgetReported, BurnRate, Event

__all__ = ["SeriesReader", "report_budgets", "budget_report", "budget_windows", "window_name"]

DAY = 86400.0
SeriesReader = Callable[[str, str], list[tuple[int, Any]]]  # (service, series) -> [(bucket, value)], oldest first


def report_budgets(svc: str, st: Status, *, policy: SlaPolicy, series: SeriesReader, now: float) -> list[Event]:
    """Every basis' report and the budget_burn evaluation, unless reported less than `report_every` ago."""
    if st["budget_at"] is not None and now - st["budget_at"] < policy.budget.report_every:
        return []
    st["budget_at"] = now
    out: list[Event] = []
    worst: tuple[float, int, str] | None = None
    for basis, (minutes, hours) in BUDGET_SERIES.items():
        report, burn = budget_report(svc, basis=basis, minutes=minutes, hours=hours, policy=policy, series=series,
                                     now=now)
        if report is None:
            continue
        st["budgets"][basis] = report.model_dump(mode="json", exclude={"id", "type"})
        out.append(report)
        if burn is not None and (worst is None or burn[0] > worst[0]):
            worst = (burn[0], burn[1], f"{basis}: {', '.join(report.alerts) or 'no page alert'}")
    rule = policy.triggers.budget_burn
    if worst is None:  # no page rule saw enough events: no data
        return out + evaluate(svc, st, "budget_burn", rule, now=now, value=None, samples=0)
    return out + evaluate(svc, st, "budget_burn", rule, now=now, value=worst[0], samples=worst[1], detail=worst[2])


def budget_report(svc: str, *, basis: str, minutes: str, hours: str, policy: SlaPolicy, series: SeriesReader,
                  now: float) -> tuple[BudgetReported | None, tuple[float, int] | None]:
    """The budget report of one basis and (page burn / factor, short-window events) for budget_burn."""
    budget = policy.budget
    windows = budget_windows(policy)
    minute_buckets = [(m * 60.0, counts_of(v)) for m, v in series(svc, minutes)]
    hour_buckets = [(h * 3600.0, counts_of(v)) for h, v in series(svc, hours)]
    counts = budgets.window_counts(minute_buckets, now=now, windows=[w for w in windows if w < DAY])
    counts |= budgets.window_counts(hour_buckets, now=now, windows=[w for w in windows if w >= DAY] + [budget.period])
    period = counts.pop(budget.period)
    if period.total == 0:
        return None, None
    burn = {w: budgets.burn_rate(c, objective=budget.objective) for w, c in counts.items()}
    min_events = policy.triggers.budget_burn.min_samples
    firing = budgets.firing_alerts(budget.alerts, burn=burn, short_counts=counts, min_events=min_events)
    left, minutes_left = budgets.budget_remaining(period, objective=budget.objective,
                                                  period=timedelta(seconds=budget.period))
    report = BudgetReported(
        time=datetime.fromtimestamp(now, UTC), service=svc, basis=basis, objective=budget.objective,
        period_days=budget.period / DAY, availability=budgets.availability(period), budget_remaining_ratio=left,
        budget_remaining_minutes=minutes_left, alerts=[a.name for a in firing], good=period.good, total=period.total,
        burn_rates=[BurnRate(window=window_name(w), rate=r) for w, r in burn.items() if r is not None],
    )
    pages = [(min(burn[a.long] or 0.0, burn[a.short] or 0.0) / a.factor, counts[a.short].total)
             for a in budget.alerts if a.severity == "page" and counts[a.short].total >= min_events]
    return report, (max(pages) if pages else None)


def budget_windows(policy: SlaPolicy) -> list[float]:
    """Every long and short window of the burn alerts, shortest first."""
    return sorted({w for a in policy.budget.alerts for w in (a.long, a.short)})


def window_name(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
