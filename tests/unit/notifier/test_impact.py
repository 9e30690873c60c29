"""The report's impact from the SLA service's minute series: requests failed in the incident's span and the
error budget it spent; "not known" when the SLA service does not answer, and the resolution goes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.notifier.impact import SlaImpact, impact_from_series
from services.notifier.models import Incident
from services.notifier.policy import NotifierPolicy
from services.notifier.report import render_report

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _series() -> dict[str, Any]:
    minutes = [T0.timestamp() + 60 * i for i in range(-5, 6)]  # 11:55 .. 12:05
    return {"period_days": 30.0,
            "minutes": {"t": minutes, "requests": [100] * 11,
                        "error_rate": [0, 0, 0, 0, 0.3, 0.3, 0.3, 0.2, 0, 0, 0]}}  # bad from 11:59 to 12:02


BUDGET = {"basis": "requests", "objective": 0.999, "period_days": 30.0, "good": 680_000, "total": 687_500}


def test_the_span_from_the_minute_before_opening_to_resolution() -> None:
    imp = impact_from_series(_series(), budget=BUDGET, start=T0, end=T0 + timedelta(minutes=3))
    # minutes 11:59 .. 12:03: 500 requests, 30 + 30 + 30 + 20 failed; the budget: 0.1 % of 687,500 = 687.5
    assert (imp.requests, imp.failed) == (500, 110)
    assert imp.budget_consumed is not None and abs(imp.budget_consumed - 110 / 687.5) < 1e-9
    assert imp.lines() == ["- Requests failed: 110 of 500", "- Error budget consumed: 16.0 % of the 30-day budget"]
    unknown = impact_from_series(_series(), budget=None, start=T0, end=T0 + timedelta(minutes=3))
    assert unknown.lines()[1].startswith("- Error budget consumed: not known")
    assert not imp.partial


def test_a_span_older_than_the_series_is_said_to_be_partial() -> None:
    imp = impact_from_series(_series(), budget=BUDGET, start=T0 - timedelta(hours=2), end=T0)
    assert imp.partial and "(the part within the SLA's minute series)" in imp.lines()[0]


async def test_the_sla_service_is_asked_and_a_silent_one_gives_not_known() -> None:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if "demo" not in request.url.path:
            return httpx.Response(404)
        return httpx.Response(200, json=_series() if request.url.path.endswith("/series") else {
            "budgets": {"requests": BUDGET}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        source = SlaImpact(http=http, sla_url="http://sla.test/")
        found = await source.impact(service="demo", start=T0, end=T0 + timedelta(minutes=3))
        assert found is not None and found.failed == 110 and abs((found.budget_consumed or 0) - 0.16) < 1e-9
        assert {str(r.url) for r in asked} == {"http://sla.test/api/sla/demo/series?hours=1",
                                                 "http://sla.test/api/sla/demo"}
        assert await source.impact(service="other", start=T0, end=T0) is None
    async with httpx.AsyncClient() as http:  # nothing listens on port 9 of loopback
        assert await SlaImpact(http=http, sla_url="http://127.0.0.1:9").impact(service="demo", start=T0,
                                                                              end=T0) is None


def test_the_report_shows_the_impact() -> None:
    inc = Incident(incident_id="inc-i", service="demo", trigger="error_rate_high", episode_id="ep",
                   title="demo: error rate 30 % > 5 %", severity="major", opened_at=T0, status="resolved",
                   resolved_at=T0 + timedelta(minutes=3), resolved_by="sla")
    md = render_report(inc, targets=NotifierPolicy().targets,
                       impact=impact_from_series(_series(), budget=BUDGET, start=T0, end=T0 + timedelta(minutes=3)))
    assert "- Requests failed: 110 of 500\n- Error budget consumed: 16.0 % of the 30-day budget" in md
