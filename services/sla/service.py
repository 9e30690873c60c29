"""The SLA core: events in, trigger and budget events out. No Faust, no Kafka.

`SlaCore` keeps all its state in two mutable mappings (Faust tables in the app, dicts in
unit tests): `buckets` (time-bucketed counts, see `windows.BucketStore`) and `status` (one
`state.Status` per service: watermark, trigger states, instances, probes, last budgets).
Time is event time: the end of a `RequestsObserved` window, the `time` of other events;
each service's watermark is the latest of those, never ahead of the processor's clock.

Hostile input: every event is checked (`validation.check`) before any state changes, so a
rejected record leaves no trace; a record already counted for its producer (same instance and
window, same target and time) raises `Duplicate`. Trigger transitions wait in the service's
`outbox` until the edge has published them (`pending`, `mark_published`), so a crash between
the state write and the publish re-publishes instead of losing the trigger.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal

from services.sla import planned, rearm
from services.sla.budget_report import DAY, budget_windows, report_budgets
from services.sla.detection import TriggerState, episode_id
from services.sla.policy import SlaPolicy
from services.sla.seconds import add_second, quantile, sum_seconds
from services.sla.state import (
    LOAD_MINUTES, PROBE_HOURS, PROBE_MINUTES, REQUEST_HOURS, REQUEST_MINUTES, SERIES, Instance, Series, Status,
    add_load, add_requests, add_tally, load_status, new_load_minute, new_request_minute, new_status, new_tally,
    series_seconds,
)
from services.sla.triggers import cleared, evaluate, evaluate_db, evaluate_memory, fired, phases, queue
from services.sla.validation import Duplicate, check
from services.sla.windows import BucketStore
from shared.events import (
    Event, HealthCheckCompleted, PageLoadObserved, ProcessStatsReported, RequestsObserved, TriggerCleared,
    TriggerFired,
)
from shared.histogram import LatencySketch

__all__ = ["SlaCore", "TRIGGERS"]

TRIGGERS = ("error_rate_high", "latency_high", "memory_high", "db_connection_lost", "budget_burn")
_FORGET_INSTANCE_S = 600.0
_FORGET_SEEN_S = 3600.0
_MAX_INSTANCES = 256  # per service, process stats
_MAX_TARGETS = 256  # per service, probes
_MAX_SEEN = 1024  # per service, request reporters remembered for replay detection
_LastSeen = Literal["requests_at", "health_at"]
# (the status key of the last record's processing time, the triggers those records feed) for `tick`
_TICKED: tuple[tuple[_LastSeen, tuple[str, ...]], ...] = (
    ("requests_at", ("error_rate_high", "latency_high")), ("health_at", ("memory_high", "db_connection_lost")),
)
_OUTPUTS: dict[str, type[TriggerFired] | type[TriggerCleared]] = {
    "sla.trigger_fired": TriggerFired, "sla.trigger_cleared": TriggerCleared,
}
log = logging.getLogger(__name__)


class SlaCore:
    def __init__(self, *, policy: SlaPolicy, buckets: MutableMapping[str, Any], status: MutableMapping[str, Any],
                 clock: Callable[[], float] = time.time, maintenance: MutableMapping[str, Any] | None = None) -> None:
        self.policy = policy
        self.maintenance: MutableMapping[str, Any] = {} if maintenance is None else maintenance
        self.clock = clock
        self.store = BucketStore(buckets)
        self.status = status
        t = policy.triggers
        self._keep_seconds = math.ceil(max(t.error_rate_high.window, t.latency_high.window)) + 2
        minute_windows = [w for w in budget_windows(policy) if w < DAY] + [300.0, policy.pageload_window]
        self._keep_minutes = math.ceil(max(minute_windows) / 60) + 1
        self._keep_hours = math.ceil(policy.budget.period / 3600) + 1
        self._maintenance_cache: dict[float, bool] = {}
        self._late: list[tuple[str, str, int, list[Any], int]] = []

    # ---- inbound -------------------------------------------------------------------------
    def observe_requests(self, event: RequestsObserved) -> list[Event]:
        svc, start = event.service, event.window_start.timestamp()
        clock = self._admit(event)
        st = self._status(svc, clock)
        start_ms = round(start * 1000)
        if start_ms <= st["seen"].get(event.instance, -math.inf):
            raise Duplicate(f"{svc}/{event.instance}: window {event.window_start.isoformat()} already counted")
        now = self._advance(st, start + event.window_seconds, clock)
        st["requests_at"] = clock
        _remember(st["seen"], event.instance, start_ms, forget_before=(now - _FORGET_SEEN_S) * 1000, cap=_MAX_SEEN)
        sec, sketch, count, good = int(start), event.latency_buckets, event.count, event.count - event.errors
        st["seconds"] = add_second(st["seconds"], sec=sec, count=count, errors=event.errors,
                                   latency_ms=event.latency_sum_ms, sketch=sketch,
                                   keep_from=math.floor(now) - self._keep_seconds)
        if not self._in_maintenance(svc, event.window_start, start):
            minute = self._bucket(svc, st, REQUEST_MINUTES, sec // 60, self._keep_minutes, new_request_minute)
            add_requests(minute, good=good, total=count, latency_ms=event.latency_sum_ms, sketch=sketch)
            add_tally(self._bucket(svc, st, REQUEST_HOURS, sec // 3600, self._keep_hours, new_tally),
                      good=good, total=count)
            self._flush_late()
        out = self._evaluate_requests(svc, st, now)
        out += self._report_budgets(svc, st, now)
        self.status[svc] = st
        return out

    def observe_page_load(self, event: PageLoadObserved) -> list[Event]:
        svc, t = event.service, event.time.timestamp()
        clock = self._admit(event)
        st = self._status(svc, clock)
        now = self._advance(st, t, clock)
        loads = self._bucket(svc, st, LOAD_MINUTES, int(t // 60), self._keep_minutes, new_load_minute)
        add_load(loads, load_ms=event.load_ms, bucket=LatencySketch.bucket_of(event.load_ms))
        self._flush_late()
        out = self._report_budgets(svc, st, now)
        self.status[svc] = st
        return out

    def observe_probe(self, event: HealthCheckCompleted) -> list[Event]:
        svc, t = event.service, event.time.timestamp()
        clock = self._admit(event)
        st = self._status(svc, clock)
        previous = st["probes"].get(event.target)
        if previous is not None and t <= previous["at"]:
            raise Duplicate(f"{svc}/{event.target}: probe at {event.time.isoformat()} already counted")
        now = self._advance(st, t, clock)
        st["health_at"] = clock
        _make_room(st["probes"], event.target, cap=_MAX_TARGETS)
        st["probes"][event.target] = {
            "kind": event.kind, "status": event.status, "state": event.state, "latency_ms": event.latency_ms, "at": t,
        }
        if not self._in_maintenance(svc, event.time, t):
            up = 1 if event.state == "up" else 0
            add_tally(self._bucket(svc, st, PROBE_MINUTES, int(t // 60), self._keep_minutes, new_tally), good=up, total=1)
            add_tally(self._bucket(svc, st, PROBE_HOURS, int(t // 3600), self._keep_hours, new_tally), good=up, total=1)
            self._flush_late()
        out = evaluate_db(svc, st, self.policy.triggers.db_connection_lost, now=now)
        out += self._report_budgets(svc, st, now)
        self.status[svc] = st
        return out

    def observe_process(self, event: ProcessStatsReported) -> list[Event]:
        svc, t = event.service, event.time.timestamp()
        clock = self._admit(event)
        st = self._status(svc, clock)
        previous = st["instances"].get(event.instance)
        if previous is not None and t <= previous["at"]:
            raise Duplicate(f"{svc}/{event.instance}: stats at {event.time.isoformat()} already counted")
        now = self._advance(st, t, clock)
        st["health_at"] = clock
        _make_room(st["instances"], event.instance, cap=_MAX_INSTANCES)
        inst = st["instances"].setdefault(event.instance, {"mem": [], "pools": {}, "at": t})
        window = self.policy.triggers.memory_high.window
        inst["mem"] = [m for m in inst["mem"] if m[0] > now - window] + [[t, event.memory_percent]]
        inst["pools"] = {p.name: p.connected for p in event.pools}
        inst["at"], inst["rss_bytes"], inst["pid"] = t, event.rss_bytes, event.pid
        st["instances"] = {k: v for k, v in st["instances"].items() if v["at"] > now - _FORGET_INSTANCE_S}
        out = self._evaluate_health(svc, st, now)
        out += self._report_budgets(svc, st, now)
        self.status[svc] = st
        return out

    # ---- the clock ------------------------------------------------------------------------
    def tick(self, service: str, *, idle_after: float, not_before: float = -math.inf) -> list[Event]:
        """Evaluate `service`'s triggers at the clock's now when its records stopped coming: windows age
        out without new data, so an episode whose window emptied clears ("no data", detection.step).

        Request triggers are evaluated when no request record came for `idle_after` seconds (by the clock
        of processing, so a backlog being read is never "no data"), memory and database ones when no
        process stats or probes came, budget_burn when it is not ok. While records flow the data path
        evaluates them. `not_before`: when this worker began to own the service's partition (silence is
        counted from then: a backlog left by a restart is read before it counts as no data). The status
        is written only when a trigger changed phase or an event came out."""
        if self.status.get(service) is None:
            return []
        clock = self.clock()
        st = self._status(service, clock)
        st["triggers"] = {k: dict(v) for k, v in st["triggers"].items()}  # nested: the table's copy stays as it is
        before = phases(st)
        silent = {at: clock - max(st.get(at, -math.inf), not_before) >= idle_after for at, _ in _TICKED}
        due = [silent[at] and any(before.get(t, ("ok",))[0] != "ok" for t in group) for at, group in _TICKED]
        burning = before.get("budget_burn", ("ok",))[0] != "ok" and all(silent.values())
        if not (any(due) or burning):
            return []  # an ok trigger stays ok without data: nothing to age out
        now = self._advance(st, clock, clock)
        out = self._evaluate_requests(service, st, now) if due[0] else []
        if due[1]:
            out += self._evaluate_health(service, st, now)
        if burning:
            out += self._report_budgets(service, st, now)
        if out or phases(st) != before:
            self.status[service] = st
        return out

    # ---- windows -------------------------------------------------------------------------
    def request_window(self, service: str, *, now: float, window: float, latency: bool = True) -> tuple[int, int, LatencySketch]:
        """(count, errors, merged latency sketch unless `latency=False`) of the seconds in `[now - window, now)`."""
        st = self.status.get(service)
        count, errors, total_ms, merged = sum_seconds(st["seconds"] if st else (), now - window, now, latency)
        return count, errors, LatencySketch.from_wire(merged, total_ms)

    def minute_window(self, service: str, series: Series, *, now: float, window: float) -> list[Any]:
        since = math.floor((now - window) / 60)
        return [v for m, v in self.series(service, series, since=since) if m * 60 < now]

    def series(self, service: str, series: str, *, since: int | None = None) -> list[tuple[int, Any]]:
        """`(bucket, value)` of a minute / hour series, oldest first: the closed buckets in the bucket
        table and the open (newest) one in the service's status."""
        st = self.status.get(service)
        current = st.get("open", {}).get(series) if st else None
        if current is None:
            return list(self.store.items(service, series, since=since))
        # (a table copy of the open bucket exists only when it was opened from state written before it was open)
        items = [(b, v) for b, v in self.store.items(service, series, since=since) if b != current[0]]
        if since is None or current[0] >= since:
            items.append((current[0], current[1]))
        return items

    # The newest bucket of each minute / hour series stays in the status value ("open"), which is
    # written once per batch anyway; it moves to the bucket table once, when a newer bucket opens.
    # A late event for an older bucket updates that bucket in the table (`_flush_late`).
    def _bucket(self, svc: str, st: Status, series: Series, bucket: int, keep: int, new: Callable[[], list[Any]]) -> Any:
        """The value of `bucket` in `series` (`new()` when there is none yet), to update in place."""
        opened = st["open"]
        current = opened.get(series)
        if current is not None and current[0] == bucket:
            return current[1]
        if current is None or bucket > current[0]:
            if current is not None:
                self.store.put(svc, series, current[0], current[1], keep=keep)
            opened[series] = [bucket, self.store.get(svc, series, bucket) or new()]
            return opened[series][1]
        value = self.store.get(svc, series, bucket) or new()
        self._late.append((svc, series, bucket, value, keep))
        return value

    def _flush_late(self) -> None:
        for service, series, bucket, value, keep in self._late:
            self.store.put(service, series, bucket, value, keep=keep)
        self._late.clear()

    # ---- triggers (triggers.py) --------------------------------------------------------------
    def _evaluate_requests(self, svc: str, st: Status, now: float) -> list[Event]:
        rules = self.policy.triggers
        er, lt = rules.error_rate_high, rules.latency_high
        seconds = st["seconds"]
        count, errors, _, merged = sum_seconds(seconds, now - er.window, now, er.window == lt.window)
        out = evaluate(svc, st, "error_rate_high", er, now=now, value=errors / count if count else None, samples=count)
        if st.get("rearm"):
            out += self._judge_rearm(svc, st, now)
        if lt.window != er.window:
            count, _, _, merged = sum_seconds(seconds, now - lt.window, now, True)
        if count < lt.min_samples:  # no data (or too little): skip the quantile
            out += evaluate(svc, st, "latency_high", lt, now=now, value=None, samples=count)
        elif lt.enabled:
            out += evaluate(svc, st, "latency_high", lt, now=now, value=quantile(merged, rules.latency_quantile),
                            samples=count, detail=f"p{round(rules.latency_quantile * 100)} over {lt.window:g}s")
        return out

    def _evaluate_health(self, svc: str, st: Status, now: float) -> list[Event]:
        rules = self.policy.triggers
        return evaluate_memory(svc, st, rules.memory_high, now=now) + evaluate_db(svc, st, rules.db_connection_lost, now=now)

    def _report_budgets(self, svc: str, st: Status, now: float) -> list[Event]:
        return report_budgets(svc, st, policy=self.policy, series=self.series, now=now)

    # ---- re-arm (rearm.py) -----------------------------------------------------------------
    def flag_turned_on(self, *, service: str, flag: str, at: datetime) -> bool:
        """A new feature `flag` was turned on at `at`: mark `service`'s firing error-rate episode, so requests
        after it that keep failing start a new episode (recovery acts again). False when nothing was marked."""
        stored = self.status.get(service)
        if stored is None:
            return False
        st: Status = dict(stored)  # type: ignore[assignment]
        if not rearm.mark(st, flag=flag, at=at.timestamp()):
            return False
        self.status[service] = st
        return True

    def _judge_rearm(self, svc: str, st: Status, now: float) -> list[Event]:
        rule = self.policy.triggers.error_rate_high
        mark = st.get("rearm")
        assert mark is not None
        since = max(now - rule.window, math.ceil(mark["at"]))  # the seconds after the change only
        count, errors, _, _ = sum_seconds(st["seconds"], since, now, False)
        rearmed = rearm.judge(st, rule=rule, now=now, count=count, errors=errors)
        if rearmed is None:
            return []
        old = TriggerState.from_dict(st["triggers"][rearm.TRIGGER])
        value = errors / count
        new = TriggerState(phase="firing", since=now, first_bad_at=rearmed.bad_since, fired_at=now, value=value, peak=value,
                           samples=count, episode_id=episode_id(service=svc, trigger=rearm.TRIGGER, first_bad_at=rearmed.bad_since))
        st["triggers"][rearm.TRIGGER] = new.to_dict()
        why = f"errors continue after flag {rearmed.flag} was turned on at {datetime.fromtimestamp(rearmed.at, UTC).isoformat()}"
        ended = cleared(svc, st, rearm.TRIGGER, old, rule=rule, now=now, value=value,
                        reason=f"superseded by {new.episode_id}: {why}")
        return queue(st, ended) + queue(st, fired(svc, rearm.TRIGGER, new, rule=rule, now=now, samples=count,
                                                  detail=f"re-armed: {why}"))

    # ---- outbox --------------------------------------------------------------------------
    def pending(self, service: str) -> list[Event]:
        """The trigger events of `service` not yet marked published, oldest first."""
        st = self.status.get(service)
        return [_OUTPUTS[e["type"]].model_validate(e) for e in (st or {}).get("outbox", ())]

    def mark_published(self, service: str, *, ids: Collection[Any]) -> None:
        wanted = {str(i) for i in ids}
        st = dict(self.status[service])
        st["outbox"] = [e for e in st.get("outbox", ()) if e["id"] not in wanted]
        self.status[service] = st

    def services_pending(self) -> list[str]:
        return sorted(svc for svc, st in self.status.items() if st and st.get("outbox"))

    def services(self) -> list[str]:
        return sorted(self.status.keys())

    # ---- state ---------------------------------------------------------------------------
    def _admit(self, event: Event) -> float:
        """The clock's now, once `event` passed the checks (`Rejected` otherwise)."""
        now = self.clock()
        check(event, now=now, window=self.policy.event_time)
        return now

    def _status(self, svc: str, clock: float) -> Status:
        """`svc`'s status to change (a copy: the table's value changes when it is written back)."""
        stored = self.status.get(svc)
        if stored is None:
            return new_status()
        st, legacy = load_status(stored)
        if st["watermark"] is not None and st["watermark"] > clock + self.policy.event_time.max_ahead:
            self._heal(svc, st, clock)
        if legacy:  # written before the hot window moved into the status value: its buckets go
            for sec in self.store.ids(svc, "rs"):
                self.store.table.pop(self.store.key(svc, "rs", sec), None)
            self.store.table.pop(f"{svc}|idx|rs", None)
        return st

    def plan_maintenance(self, *, service: str, window_id: str, start: float, end: float) -> None:
        """A window from the notifier's API covers `service` over [start, end) (`end <= start`: no longer at all)."""
        forget = self.clock() - self.policy.event_time.max_behind
        windows = planned.plan(self.maintenance.get(service), window_id=window_id, start=start, end=end,
                               forget_before=forget)
        if windows:
            self.maintenance[service] = windows
        elif service in self.maintenance:
            del self.maintenance[service]

    def _in_maintenance(self, svc: str, t: datetime, ts: float) -> bool:
        """A window of the notifier's API for `svc`, or `policy.in_maintenance` (cached per timestamp: every
        service reports the same seconds)."""
        if planned.covers(self.maintenance.get(svc), ts):
            return True
        if not self.policy.maintenance:
            return False
        hit = self._maintenance_cache.get(ts)
        if hit is None:
            if len(self._maintenance_cache) > 4096:
                self._maintenance_cache.clear()
            hit = self._maintenance_cache[ts] = self.policy.in_maintenance(t)
        return hit

    def _heal(self, svc: str, st: Status, now: float) -> None:
        """State moved into the future by a record accepted before the event-time checks: bring it back."""
        log.warning("sla state of %s was ahead of now; dropping its future part", svc)
        st["watermark"] = st["budget_at"] = None
        st["seconds"] = [e for e in st["seconds"] if e[0] <= now]
        st["open"] = {series: v for series, v in st["open"].items() if v[0] * series_seconds(series) <= now}
        st["seen"] = {k: v for k, v in st["seen"].items() if v <= now * 1000}
        st["triggers"] = {k: {**v, "since": min(v["since"], now)} if v.get("since") else v for k, v in st["triggers"].items()}
        for series in SERIES:
            ids = self.store.ids(svc, series)
            future = [b for b in ids if b * series_seconds(series) > now]
            for b in future:
                self.store.table.pop(self.store.key(svc, series, b), None)
            if future:
                self.store.table[f"{svc}|idx|{series}"] = [b for b in ids if b not in future]

    @staticmethod
    def _advance(st: Status, t: float, clock: float) -> float:
        """The service's watermark after an event at `t`: the latest event time, never ahead of `clock`."""
        wm = min(t if st["watermark"] is None else max(st["watermark"], t), clock)
        st["watermark"] = wm
        return float(wm)


def _remember(seen: dict[str, int], instance: str, start_ms: int, *, forget_before: float, cap: int) -> None:
    """Record the newest window of `instance`; forget reporters long silent, and the oldest beyond `cap`."""
    if instance not in seen and len(seen) >= cap:
        for name in [k for k, v in seen.items() if v < forget_before] or [min(seen, key=seen.__getitem__)]:
            del seen[name]
    seen[instance] = start_ms


def _make_room(items: dict[str, Any], name: str, *, cap: int) -> None:
    """Before adding `name` to `items` (values with an `at`), drop the least recent one when full."""
    if name not in items and len(items) >= cap:
        del items[min(items, key=lambda k: items[k]["at"])]
