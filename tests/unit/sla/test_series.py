"""The console's chart data (`GET /api/sla/{service}/series`), from what the core keeps: per-minute error rate and
p95 against the thresholds, memory per instance, and 1 h / 6 h / 3 d burn rates and the budget left."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.sla.policy import SlaPolicy
from services.sla.series import MemoryHistory, service_series
from services.sla.service import SlaCore
from shared.testing import FakeClock
from tests.unit.sla.helpers import T0, process, requests


def _core(*, at: float = 182) -> SlaCore:
    """`at`: the clock, seconds after T0 (just after the last report by default)."""
    return SlaCore(policy=SlaPolicy(), buckets={}, status={}, clock=FakeClock((T0 + timedelta(seconds=at)).timestamp()))


def _three_minutes(core: SlaCore) -> None:
    """Minute 0 clean, minute 1 with 10 % errors, minute 2 slow (6 s), then one report of minute 3."""
    for s in range(181):
        core.observe_requests(requests(s, count=10, errors=1 if 60 <= s < 120 else 0, ms=6000.0 if s >= 120 else 40.0))


def test_minutes_show_error_rate_and_p95_with_the_thresholds() -> None:
    core = _core()
    _three_minutes(core)
    out = service_series(core, "shop", hours=1, memory=MemoryHistory())
    assert out is not None
    m = out["minutes"]
    start = T0.timestamp()
    assert m["t"] == [start, start + 60, start + 120, start + 180]  # the open minute too, as far as it got
    assert m["requests"] == [600, 600, 600, 10]
    assert m["error_rate"] == [0.0, pytest.approx(0.1), 0.0, 0.0]
    assert m["latency_ms"][0] == pytest.approx(40, rel=0.03) and m["latency_ms"][2] == pytest.approx(6000, rel=0.03)
    assert out["thresholds"] == {"error_rate": 0.05, "latency_ms": 5000, "latency_quantile": 0.95,
                                 "memory_percent": 90}


def test_burn_rates_and_budget_follow_the_errors() -> None:
    core = _core()
    _three_minutes(core)
    budget = service_series(core, "shop", hours=1, memory=MemoryHistory())["budget"]  # type: ignore[index]
    assert set(budget["burn"]) == {"1h", "6h", "3d"}
    assert all(len(v) == len(budget["t"]) for v in [*budget["burn"].values(), budget["budget_remaining"]])
    # the last step sees 60 bad of 1810 requests: error ratio 3.3 %, 33x the 0.1 % allowed
    ratio = 60 / 1810
    assert budget["burn"]["1h"][-1] == pytest.approx(ratio / 0.001, rel=0.01)
    assert budget["budget_remaining"][-1] == pytest.approx(1 - ratio / 0.001, rel=0.01)
    # before the first request nothing burns (None: no events, not zero)
    assert budget["burn"]["1h"][0] is None
    assert [a["factor"] for a in budget["alerts"]] == [14.4, 6, 3, 1]
    # at the start of minute 2 the windows hold minutes 0 and 1 only (not the whole hour's bucket)
    at = budget["t"].index(T0.timestamp() + 120)
    assert budget["burn"]["1h"][at] == budget["burn"]["3d"][at] == pytest.approx(0.05 / 0.001)


def test_memory_history_keeps_the_reports_the_status_forgets() -> None:
    core, history = _core(), MemoryHistory()
    for s in range(0, 60, 5):
        core.observe_process(process(s, memory=50.0 + s / 2, instance="blue"))
        history.sample(core)
    history.sample(core)  # nothing new: nothing added twice
    core.observe_requests(requests(60, count=10))
    out = service_series(core, "shop", hours=1, memory=history)
    assert out is not None
    blue = out["memory"]["blue"]
    assert len(blue["t"]) == 12 and blue["percent"][0] == 50.0 and blue["percent"][-1] == 77.5
    assert len(core.status["shop"]["instances"]["blue"]["mem"]) < 12  # the status keeps only the trigger window


def test_a_quiet_service_shows_its_quiet_part() -> None:
    core = _core(at=7200)
    _three_minutes(core)
    out = service_series(core, "shop", hours=1, memory=MemoryHistory())
    assert out is not None and out["minutes"]["t"] == []  # the busy minutes were two hours ago
    assert out["last_data_at"] == (T0 + timedelta(seconds=181)).isoformat()
    assert out["budget"]["burn"]["6h"][-1] == pytest.approx(60 / 1810 / 0.001, rel=0.01)


def test_an_unknown_service_has_no_series() -> None:
    assert service_series(_core(), "nope", hours=6, memory=MemoryHistory()) is None
