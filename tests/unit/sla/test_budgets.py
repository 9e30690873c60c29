from datetime import timedelta

import pytest

from services.sla import budgets
from services.sla.budgets import Counts
from services.sla.policy import SlaPolicy


def test_downtime_allowed_by_three_nines() -> None:
    assert budgets.allowed_downtime(objective=0.999, period=timedelta(days=30)) .total_seconds() / 60 == pytest.approx(43.2)
    assert budgets.allowed_downtime(objective=0.999, period=timedelta(days=365)).total_seconds() / 3600 == pytest.approx(8.76)
    with pytest.raises(ValueError):
        budgets.allowed_downtime(objective=1.0, period=timedelta(days=30))


def test_availability_and_burn() -> None:
    assert budgets.availability(Counts(999, 1000)) == pytest.approx(0.999)
    assert budgets.availability(Counts()) is None
    assert budgets.burn_rate(Counts(999, 1000), objective=0.999) == pytest.approx(1.0)
    assert budgets.burn_rate(Counts(80, 100), objective=0.999) == pytest.approx(200.0)
    assert budgets.burn_rate(Counts(), objective=0.999) is None


def test_budget_remaining_in_ratio_and_minutes() -> None:
    period = timedelta(days=30)
    assert budgets.budget_remaining(Counts(), objective=0.999, period=period) == (1.0, pytest.approx(43.2))
    ratio, minutes = budgets.budget_remaining(Counts(9995, 10000), objective=0.999, period=period)
    assert ratio == pytest.approx(0.5) and minutes == pytest.approx(21.6)
    ratio, minutes = budgets.budget_remaining(Counts(9980, 10000), objective=0.999, period=period)
    assert ratio == pytest.approx(-1.0) and minutes == pytest.approx(-43.2)


def test_window_counts_sums_trailing_buckets() -> None:
    buckets = [(0.0, Counts(10, 10)), (60.0, Counts(5, 10)), (120.0, Counts(0, 10)), (180.0, Counts(1, 1))]
    sums = budgets.window_counts(buckets, now=180.0, windows=[60, 120, 600])
    assert sums[60] == Counts(0, 10)  # the bucket starting at now is not yet in
    assert sums[120] == Counts(5, 20)
    assert sums[600] == Counts(15, 30)


@pytest.mark.parametrize(("rates", "expected"), [
    ({}, ["page:1h/5m", "page:6h/30m", "ticket:1d/2h", "ticket:3d/6h"]),
    ({300: 10.0}, ["page:6h/30m", "ticket:1d/2h", "ticket:3d/6h"]),  # the 5 min window recovered below 14.4
    ({w: 7.0 for w in (300, 1800, 3600, 7200, 21600, 86400, 259200)}, ["page:6h/30m", "ticket:1d/2h", "ticket:3d/6h"]),
    ({w: 2.0 for w in (300, 1800, 3600, 7200, 21600, 86400, 259200)}, ["ticket:3d/6h"]),
    ({w: 0.5 for w in (1800, 3600, 7200, 21600, 86400, 259200)} | {300: 20.0}, []),  # a short spike alone does not page
])
def test_workbook_multiwindow_alerts(rates: dict[float, float], expected: list[str]) -> None:
    rules = SlaPolicy().budget.alerts
    burn = {w: 15.0 for r in rules for w in (r.long, r.short)} | rates
    counts = {r.short: Counts(0, 100) for r in rules}
    firing = budgets.firing_alerts(rules, burn=burn, short_counts=counts, min_events=10)
    assert [r.name for r in firing] == expected


def test_alerts_need_enough_events_in_the_short_window() -> None:
    rules = SlaPolicy().budget.alerts
    burn = {w: 100.0 for r in rules for w in (r.long, r.short)}
    few = {r.short: Counts(0, 3) for r in rules}
    assert budgets.firing_alerts(rules, burn=burn, short_counts=few, min_events=10) == []
