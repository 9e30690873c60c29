"""The SLA state as the Faust tables hold it: JSON through the changelog, and values written by older code."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from faust.serializers import codecs

from services.sla.policy import SlaPolicy
from services.sla.service import SlaCore
from services.sla.state import REQUEST_MINUTES
from shared.events import Event, TriggerFired
from shared.testing import FakeClock
from tests.unit.sla.helpers import T0, probe, process, requests


def restore(table: dict[str, Any]) -> dict[str, Any]:
    """The table as a restart restores it: every value through the tables' JSON codec (`tables.define_tables`)."""
    return {k: codecs.loads("json", codecs.dumps("json", v)) for k, v in table.items()}


def _core(buckets: MutableMapping[str, Any], status: MutableMapping[str, Any]) -> SlaCore:
    return SlaCore(policy=SlaPolicy(), buckets=buckets, status=status, clock=FakeClock((T0 + timedelta(days=1)).timestamp()))


def _run(c: SlaCore, events: list[Any]) -> list[dict[str, Any]]:
    out: list[Event] = []
    for e in events:
        out += {"telemetry.requests_observed": c.observe_requests, "health.process_stats_reported": c.observe_process,
                "health.check_completed": c.observe_probe}[e.type](e)
    return [e.model_dump(mode="json", exclude={"id"}) for e in out]


def test_the_state_survives_the_json_changelog_unchanged() -> None:
    """Restarted every 7 records (each table restored from its JSON), the processor says what it says uninterrupted."""
    events: list[Any] = [requests(s, errors=30 if 20 <= s < 45 else 0) for s in range(90)]
    events += [process(90 + s, memory=95.0, connected=s < 5) for s in range(20)] + [probe(110 + s) for s in range(5)]
    uninterrupted = _run(_core({}, {}), events)
    buckets: dict[str, Any] = {}
    status: dict[str, Any] = {}
    restarted: list[dict[str, Any]] = []
    for i in range(0, len(events), 7):
        buckets, status = restore(buckets), restore(status)
        restarted += _run(_core(buckets, status), events[i:i + 7])
    kinds = {e["type"] for e in uninterrupted}
    assert {"sla.trigger_fired", "sla.trigger_cleared", "sla.budget_reported"} <= kinds
    assert restarted == uninterrupted
    assert status["shop"]["seconds"] and status["shop"]["open"][REQUEST_MINUTES]


def test_a_status_written_before_the_hot_window_moved_into_it_is_read_and_goes_on() -> None:
    """A value as the processor wrote it before `seconds`, `open`, `seen` and `outbox` (per-second
    buckets "rs" in the bucket table): it restores, its episode goes on and clears, the old seconds go."""
    t0, minute = T0.timestamp(), int(T0.timestamp()) // 60
    firing = {"phase": "firing", "since": t0 + 3, "first_bad_at": t0 + 2, "fired_at": t0 + 3, "value": 0.3, "peak": 0.3,
              "samples": 500, "episode_id": f"shop/error_rate_high/{int((t0 + 2) * 1000)}", "instance": None,
              "no_data": False}
    old_status = {"shop": {"watermark": t0 + 5, "triggers": {"error_rate_high": firing}, "instances": {}, "probes": {},
                           "budget_at": None, "budgets": {}}}
    old_buckets = {f"shop|rs|{int(t0)}": [100, 30], "shop|idx|rs": [int(t0)],
                   f"shop|rm|{minute}": [70, 100, 5000.0, {"10": 100}], "shop|idx|rm": [minute]}
    buckets, status = restore(old_buckets), restore(old_status)
    out = [e for e in _run(_core(buckets, status), [requests(s) for s in range(6, 40)])
           if e["type"] in ("sla.trigger_fired", "sla.trigger_cleared") and e["trigger"] == "error_rate_high"]
    assert [(e["type"], e["episode_id"]) for e in out] == [("sla.trigger_cleared", firing["episode_id"])]
    assert not [k for k in buckets if "|rs" in k]
    good, total, _, _ = _core(buckets, status).series("shop", REQUEST_MINUTES)[0][1]
    assert (good, total) == (70 + 34 * 100, 100 + 34 * 100)
    assert set(status["shop"]) >= {"seconds", "open", "seen", "outbox"} and status["shop"]["outbox"]


def test_trigger_events_are_the_same_types_after_a_restore() -> None:
    status: dict[str, Any] = {}
    c = _core({}, status)
    _run(c, [requests(s, errors=40) for s in range(10)])
    assert [type(e) for e in c.pending("shop")] == [TriggerFired]
    assert [type(e) for e in _core({}, restore(status)).pending("shop")] == [TriggerFired]
