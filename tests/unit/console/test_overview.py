"""The overview in words: trigger values as people read them, budgets, instances; the shared poller."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.console.feed import SharedFeed
from services.console.human import budget_text, since, trigger_text
from services.console.overview import shape

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("trigger", "value", "threshold", "text"), [
    ("error_rate_high", 0.156997, 0.05, "error rate 15.7 % > 5 %"),
    ("latency_high", 6234.0, 5000.0, "p95 latency 6.23 s > 5.00 s"),
    ("memory_high", 93.44, 90.0, "memory 93.4 % > 90 %"),
    ("budget_burn", 14.42, 1.0, "error budget burn rate 14.4× > 1×"),
    ("db_connection_lost", 1.0, 0.5, "database connection lost"),
    ("something_new", 3.0, 2.0, "something new 3 > 2"),
])
def test_triggers_read_as_human_numbers(trigger: str, value: float, threshold: float, text: str) -> None:
    assert trigger_text(trigger, value, threshold) == text


def test_budget_left_and_times() -> None:
    assert budget_text(0.8321) == "83.2 % left"
    assert budget_text(-44.04) == "exhausted (-4404 %)"
    assert since((NOW - timedelta(minutes=7, seconds=20)).isoformat(), now=NOW) == "7 min ago"
    assert since((NOW - timedelta(seconds=5)).isoformat(), now=NOW) == "just now"
    assert since((NOW - timedelta(hours=5)).isoformat(), now=NOW) == "5 h ago"


def _status() -> dict[str, Any]:
    check = {"kind": "http", "state": "up", "status": "pass", "critical": True, "message": ""}
    return {
        "status": "degraded",
        "services": {"flags": {"state": "up", "checks": {"flags": check}},
                     "demo": {"state": "degraded", "checks": {"demo": check, "demo-blue": {
                         **check, "state": "down", "critical": False, "message": "connection refused"}}}},
        "dependencies": {"redis": {"state": "up", "checks": {"redis": check}}},
        "apps": {"demo": {"instances": {"demo-blue": {
            "pid": 7, "memory_percent": 93.4, "rss_bytes": 80_183_296, "stale": False, "seen_at": NOW.isoformat(),
            "pools": [{"name": "postgres", "size": 4, "idle": 1, "max_size": 10, "connected": False}]}}}},
        "breakers": {"demo": {"postgres": {"state": "open", "instances": {"demo-blue": {"state": "open"}}}}},
        "incidents": {"open": [{"incident_id": "inc-1", "service": "demo", "title": "demo: error rate 15.7 % > 5 %",
                                "severity": "major", "status": "open", "level": 2,
                                "opened_at": (NOW - timedelta(minutes=3)).isoformat()}]},
        "sla": {"budgets": {"demo": {"objective": 0.999, "availability": 0.99, "budget_remaining_ratio": -9.0,
                                     "budget_remaining_minutes": -300.0, "burn_rates": {"1h": 10.0}, "alerts": ["page:1h/5m"]},
                            "bench-x": {"objective": 0.999, "availability": 1.0, "budget_remaining_ratio": 1.0,
                                        "budget_remaining_minutes": 43.2, "burn_rates": {}, "alerts": []}},
                "active_triggers": [{"service": "demo", "trigger": "error_rate_high", "value": 0.157, "threshold": 0.05,
                                     "fired_at": (NOW - timedelta(minutes=2)).isoformat()}]},
        "flags": {"a": {"state": "ENABLED"}, "b": {"state": "DISABLED"}},
        "notes": ["demo-blue (demo) is down"], "feed": {"connected": True},
    }


def test_shape_puts_every_part_in_words() -> None:
    view = shape(_status(), now=NOW)
    assert (view["overall"], view["overall_text"], view["overall_class"]) == ("degraded", "Degraded", "warn")
    demo = next(s for s in view["services"] if s["name"] == "demo")
    assert demo["class"] == "warn" and [c["name"] for c in demo["problems"]] == ["demo-blue"]
    [inst] = view["instances"]
    assert (inst["memory"], inst["rss"], inst["memory_high"], inst["pools_down"]) == ("93 %", "80 MB", True, True)
    assert inst["pools"] == ["postgres: 3 busy / 4 open of 10 (disconnected)"]
    assert view["breakers"] == [{"service": "demo", "name": "postgres", "state": "open", "class": "bad",
                                 "instances": {"demo-blue": "open"}}]
    assert view["triggers"][0]["text"] == "error rate 15.7 % > 5 %" and view["triggers"][0]["since"] == "2 min ago"
    assert [b["service"] for b in view["budgets"]] == ["demo"]  # a monitored service
    assert [b["service"] for b in view["other_budgets"]] == ["bench-x"]  # tests' and benches' services, folded
    assert view["budgets"][0]["left"] == "exhausted (-900 %)" and view["budgets"][0]["class"] == "bad"
    assert view["incidents"][0]["opened"] == "3 min ago"
    assert view["flags"] == {"total": 2, "on": 1, "off": 1}


def test_the_fragment_renders_the_numbers() -> None:
    from services.console.templating import templates
    html = templates.get_template("overview_body.html").render(now=NOW, error="", **shape(_status(), now=NOW))
    for text in ("error rate 15.7 % &gt; 5 %", "exhausted (-900 %)", "93 %", "demo-blue down: connection refused",
                 'href="/console/incidents/inc-1"', "(level 2)", "1 other services"):
        assert text in html, text


# ------------------------------------------------------------------ one shared poller


class Upstream:
    def __init__(self) -> None:
        self.calls = 0
        self.value = "a"

    async def produce(self) -> str:
        self.calls += 1
        return f"<p>{self.value}</p>"


async def _take(it: Any, n: int, timeout: float = 2.0) -> list[str]:
    return [await asyncio.wait_for(anext(it), timeout) for _ in range(n)]


async def test_many_listeners_share_one_poller_and_get_only_changes() -> None:
    up = Upstream()
    feed = SharedFeed(produce=up.produce, interval_s=0.05)
    first, second = feed.listen(), feed.listen()
    assert await _take(first, 1) == ["<p>a</p>"] and await _take(second, 1) == ["<p>a</p>"]
    await asyncio.sleep(0.3)  # ~6 polls, nothing changed: nothing pushed
    polls = up.calls
    assert 3 <= polls <= 9, polls  # one poller for both listeners, not one each
    up.value = "b"
    assert await _take(first, 1) == ["<p>b</p>"] and await _take(second, 1) == ["<p>b</p>"]
    await first.aclose()
    assert feed.listeners == 1
    await second.aclose()
    assert feed.listeners == 0
    stopped_at = up.calls
    await asyncio.sleep(0.2)
    assert up.calls == stopped_at  # no listener, no polling


async def test_a_page_load_between_polls_reuses_the_last_fragment() -> None:
    up = Upstream()
    feed = SharedFeed(produce=up.produce, interval_s=10)
    assert await feed.current() == await feed.current() == "<p>a</p>"
    assert up.calls == 1


async def test_a_failing_render_keeps_the_poller_and_the_last_fragment() -> None:
    up = Upstream()
    feed = SharedFeed(produce=up.produce, interval_s=0.03)
    it = feed.listen()
    assert await _take(it, 1) == ["<p>a</p>"]

    async def broken() -> str:
        raise RuntimeError("template bug")
    feed._produce = broken
    await asyncio.sleep(0.1)
    assert feed.latest == "<p>a</p>"
    feed._produce = up.produce
    up.value = "c"
    assert await _take(it, 1) == ["<p>c</p>"]
    await it.aclose()
