"""The SLA core: events in, trigger and budget events out. No Faust, no Kafka.

`SlaCore` keeps all its state in two mutable mappings (Faust tables in the app, dicts in
unit tests): `buckets` (time-bucketed counts, see `windows.BucketStore`) and `status` (one
small dict per service: watermark, trigger states, instances, probes, last budgets).
Time is event time: the end of a `RequestsObserved` window, the `time` of other events;
each service's watermark is the latest of those, never ahead of the processor's clock.

Hostile input: every event is checked (`validation.check`) before any state changes, so a
rejected record leaves no trace; a record already counted for its producer (same instance and
window, same target and time) raises `Duplicate`. Trigger transitions wait in the service's
`outbox` until the edge has published them (`pending`, `mark_published`), so a crash between
the state write and the publish re-publishes instead of losing the trigger.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable, Collection, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from services.sla import budgets, planned, rearm
from services.sla.budgets import Counts
from services.sla.detection import TriggerState, episode_id, step
from services.sla.policy import SlaPolicy, TriggerRule
from services.sla.validation import Duplicate, check
from services.sla.windows import BucketStore
from shared.events import (
    BudgetReported, BurnRate, Event, HealthCheckCompleted, PageLoadObserved, ProcessStatsReported,
    RequestsObserved, TriggerCleared, TriggerFired,
)
from shared.histogram import LatencySketch

__all__ = ["SlaCore", "TRIGGERS"]

TRIGGERS = ("error_rate_high", "latency_high", "memory_high", "db_connection_lost", "budget_burn")
_DAY = 86400.0
_FORGET_INSTANCE_S = 600.0
_FORGET_SEEN_S = 3600.0
_MAX_INSTANCES = 256  # per service, process stats
_MAX_TARGETS = 256  # per service, probes
_MAX_SEEN = 1024  # per service, request reporters remembered for replay detection
_MAX_OUTBOX = 100  # unpublished trigger events per service (the oldest go first)
# (the status key of the last record's processing time, the triggers those records feed) for `tick`
_TICKED = (("requests_at", ("error_rate_high", "latency_high")), ("health_at", ("memory_high", "db_connection_lost")))
_OUTPUTS: dict[str, type[TriggerFired] | type[TriggerCleared]] = {"sla.trigger_fired": TriggerFired, "sla.trigger_cleared": TriggerCleared}
log = logging.getLogger(__name__)


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


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
        minute_windows = [w for w in self._budget_windows() if w < _DAY] + [300.0, policy.pageload_window]
        self._keep_minutes = math.ceil(max(minute_windows) / 60) + 1
        self._keep_hours = math.ceil(policy.budget.period / 3600) + 1
        self._report_every = policy.budget.report_every
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
        sec = int(start)
        wire, count, errors = event.latency_buckets, event.count, event.errors
        _add_second(st, sec, count, errors, event.latency_sum_ms, wire, keep_from=math.floor(now) - self._keep_seconds)
        if not self._in_maintenance(svc, event.window_start, start):
            good, total_ms = count - errors, event.latency_sum_ms
            minute = self._bucket(svc, st, "rm", sec // 60, self._keep_minutes, [0, 0, 0.0, {}])
            minute[0] += good
            minute[1] += count
            minute[2] += total_ms
            _merge_wire(minute[3], wire)
            hour = self._bucket(svc, st, "rh", sec // 3600, self._keep_hours, [0, 0])
            hour[0] += good
            hour[1] += count
            self._flush_late()
        out = self._evaluate_requests(svc, st, now)
        if st["budget_at"] is None or now - st["budget_at"] >= self._report_every:
            out += self._maybe_report_budgets(svc, st, now)
        self.status[svc] = st
        return out

    def observe_page_load(self, event: PageLoadObserved) -> list[Event]:
        svc, t = event.service, event.time.timestamp()
        clock = self._admit(event)
        st = self._status(svc, clock)
        now = self._advance(st, t, clock)
        minute = int(t // 60)
        loads = self._bucket(svc, st, "lm", minute, self._keep_minutes, [0.0, {}])
        loads[0] += event.load_ms
        _merge_wire(loads[1], {str(LatencySketch.bucket_of(event.load_ms)): 1})
        self._flush_late()
        out = self._maybe_report_budgets(svc, st, now)
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
            for series, bucket, keep in (("pm", int(t // 60), self._keep_minutes), ("ph", int(t // 3600), self._keep_hours)):
                counts = self._bucket(svc, st, series, bucket, keep, [0, 0])
                counts[0] += up
                counts[1] += 1
            self._flush_late()
        out = self._evaluate_db(svc, st, now)
        out += self._maybe_report_budgets(svc, st, now)
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
        out = self._evaluate_memory(svc, st, now) + self._evaluate_db(svc, st, now)
        out += self._maybe_report_budgets(svc, st, now)
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
        current = self.status.get(service)
        if current is None:
            return []
        clock = self.clock()
        st = self._status(service, clock)
        st["triggers"] = {k: dict(v) for k, v in st["triggers"].items()}  # nested: the table's copy stays as it is
        before = _phases(st)
        def silent(at: str) -> bool:
            return bool(clock - max(st.get(at, -math.inf), not_before) >= idle_after)

        due = [silent(at) and any(before.get(t, ("ok",))[0] != "ok" for t in group)
               for at, group in _TICKED]
        burning = before.get("budget_burn", ("ok",))[0] != "ok" and all(silent(at) for at, _ in _TICKED)
        if not (any(due) or burning):
            return []  # an ok trigger stays ok without data: nothing to age out
        now = self._advance(st, clock, clock)
        out = self._evaluate_requests(service, st, now) if due[0] else []
        if due[1]:
            out += self._evaluate_memory(service, st, now) + self._evaluate_db(service, st, now)
        if burning:
            out += self._maybe_report_budgets(service, st, now)
        if out or _phases(st) != before:
            self.status[service] = st
        return out

    # ---- windows -------------------------------------------------------------------------
    def request_window(self, service: str, *, now: float, window: float, latency: bool = True) -> tuple[int, int, LatencySketch]:
        """(count, errors, merged latency sketch unless `latency=False`) of the seconds in `[now - window, now)`."""
        st = self.status.get(service)
        count, errors, total_ms, merged = _sum_seconds(st["seconds"] if st else (), now - window, now, latency)
        return count, errors, LatencySketch.from_wire(merged, total_ms)

    def minute_window(self, service: str, series: str, *, now: float, window: float) -> list[Any]:
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
    def _bucket(self, svc: str, st: dict[str, Any], series: str, bucket: int, keep: int, new: list[Any]) -> list[Any]:
        """The value of `bucket` in `series`, to update in place."""
        opened = st["open"]
        current = opened.get(series)
        if current is not None and current[0] == bucket:
            return current[1]  # type: ignore[no-any-return]
        if current is None or bucket > current[0]:
            if current is not None:
                self.store.put(svc, series, current[0], current[1], keep=keep)
            opened[series] = [bucket, self.store.get(svc, series, bucket) or new]
            return opened[series][1]  # type: ignore[no-any-return]
        value = self.store.get(svc, series, bucket) or new
        self._late.append((svc, series, bucket, value, keep))
        return value

    def _flush_late(self) -> None:
        for service, series, bucket, value, keep in self._late:
            self.store.put(service, series, bucket, value, keep=keep)
        self._late.clear()

    # ---- triggers ------------------------------------------------------------------------
    def _evaluate_requests(self, svc: str, st: dict[str, Any], now: float) -> list[Event]:
        rules = self.policy.triggers
        er, lt = rules.error_rate_high, rules.latency_high
        seconds = st["seconds"]
        count, errors, total_ms, merged = _sum_seconds(seconds, now - er.window, now, er.window == lt.window)
        out = self._step(svc, st, "error_rate_high", er, now=now, value=errors / count if count else None, samples=count)
        if st.get("rearm"):
            out += self._judge_rearm(svc, st, now)
        if lt.window != er.window:
            count, _, total_ms, merged = _sum_seconds(seconds, now - lt.window, now, True)
        if count < lt.min_samples:  # no data (or too little): skip the quantile
            out += self._step(svc, st, "latency_high", lt, now=now, value=None, samples=count)
        elif lt.enabled:
            value = _quantile(merged, rules.latency_quantile)
            out += self._step(svc, st, "latency_high", lt, now=now, value=value, samples=count,
                              detail=f"p{round(rules.latency_quantile * 100)} over {lt.window:g}s")
        return out

    def _evaluate_memory(self, svc: str, st: dict[str, Any], now: float) -> list[Event]:
        rule = self.policy.triggers.memory_high
        best: tuple[float, int, str] | None = None
        for name, inst in st["instances"].items():
            recent = [pct for t, pct in inst["mem"] if t > now - rule.window]
            if len(recent) >= rule.min_samples:  # the lowest of the last min_samples reports: no single spike
                candidate = (min(recent[-rule.min_samples:]), len(recent), name)
                best = candidate if best is None or candidate[0] > best[0] else best
        if best is None:  # no instance reported enough: no data
            return self._step(svc, st, "memory_high", rule, now=now, value=None, samples=0)
        return self._step(svc, st, "memory_high", rule, now=now, value=best[0], samples=best[1], instance=best[2],
                          detail=f"instance {best[2]}: lowest of its last {rule.min_samples} reports")

    def _evaluate_db(self, svc: str, st: dict[str, Any], now: float) -> list[Event]:
        rule = self.policy.triggers.db_connection_lost
        seen, lost = 0, []
        for name, inst in st["instances"].items():
            if inst["at"] > now - rule.window and inst["pools"]:
                seen += 1
                lost += [f"{name}/{pool}" for pool, ok in inst["pools"].items() if not ok]
        for target, probe in st["probes"].items():
            if probe["kind"] == "postgres" and probe["at"] > now - rule.window:
                seen += 1
                lost += [target] if probe["state"] == "down" else []
        if not seen:
            return self._step(svc, st, "db_connection_lost", rule, now=now, value=None, samples=0)
        instance = lost[0].split("/")[0] if lost and "/" in lost[0] else None
        return self._step(svc, st, "db_connection_lost", rule, now=now, value=1.0 if lost else 0.0, samples=seen,
                          instance=instance, detail=", ".join(lost) or "connected")

    def _step(
        self, svc: str, st: dict[str, Any], trigger: str, rule: TriggerRule, *, now: float, value: float | None,
        samples: int, instance: str | None = None, detail: str = "",
    ) -> list[Event]:
        if not rule.enabled:
            return []
        current = st["triggers"].get(trigger)
        idle = current is None or current["phase"] == "ok"
        if idle and (value is None or samples < rule.min_samples):
            return []  # no data keeps ok as it is (detection.step)
        if idle and not value > rule.threshold:  # type: ignore[operator]
            # ok and not bad stays ok (detection.step), without building the state: the common case
            st["triggers"][trigger] = {**current, "value": value, "samples": samples} if current else \
                TriggerState(value=value, samples=samples).to_dict()
            return []
        before = TriggerState.from_dict(current)
        after, transition = step(before, rule=rule, now=now, value=value, samples=samples, service=svc,
                                 trigger=trigger, instance=instance)
        st["triggers"][trigger] = after.to_dict()
        if transition == "fired":
            return _queue(st, _fired(svc, trigger, after, rule=rule, now=now, samples=samples, detail=detail))
        if transition == "cleared":
            reason = _clear_reason(before, after, rule=rule, samples=samples, now=now)
            return _queue(st, self._cleared(svc, st, trigger, after, rule=rule, now=now, value=value, reason=reason))
        return []

    @staticmethod
    def _cleared(svc: str, st: dict[str, Any], trigger: str, state: TriggerState, *, rule: TriggerRule, now: float,
                 value: float | None, reason: str) -> TriggerCleared:
        """The end of `state`'s episode; `reason` is kept in the status (`clears`) and logged."""
        assert state.episode_id is not None
        st.setdefault("clears", {})[trigger] = {"episode_id": state.episode_id, "at": now, "reason": reason}
        log.info("%s %s cleared: %s", svc, trigger, reason, extra={"episode_id": state.episode_id})
        return TriggerCleared(
            id=uuid5(NAMESPACE_URL, f"{state.episode_id}#cleared"), time=_dt(now), service=svc,
            trigger=trigger, episode_id=state.episode_id, value=value or 0.0, threshold=rule.clear_at,
            fired_at=_dt(state.fired_at) if state.fired_at is not None else None, instance=state.instance,
            reason=reason,
        )

    # ---- re-arm (rearm.py) -----------------------------------------------------------------
    def flag_turned_on(self, *, service: str, flag: str, at: datetime) -> bool:
        """A new feature `flag` was turned on at `at`: mark `service`'s firing error-rate episode, so requests
        after it that keep failing start a new episode (recovery acts again). False when nothing was marked."""
        st = self.status.get(service)
        if st is None:
            return False
        st = dict(st)
        if not rearm.mark(st, flag=flag, at=at.timestamp()):
            return False
        self.status[service] = st
        return True

    def _judge_rearm(self, svc: str, st: dict[str, Any], now: float) -> list[Event]:
        rule = self.policy.triggers.error_rate_high
        since = max(now - rule.window, math.ceil(st["rearm"]["at"]))  # the seconds after the change only
        count, errors, _, _ = _sum_seconds(st["seconds"], since, now, False)
        fired = rearm.judge(st, rule=rule, now=now, count=count, errors=errors)
        if fired is None:
            return []
        old = TriggerState.from_dict(st["triggers"][rearm.TRIGGER])
        value = errors / count
        new = TriggerState(phase="firing", since=now, first_bad_at=fired.bad_since, fired_at=now, value=value, peak=value,
                           samples=count, episode_id=episode_id(service=svc, trigger=rearm.TRIGGER, first_bad_at=fired.bad_since))
        st["triggers"][rearm.TRIGGER] = new.to_dict()
        why = f"errors continue after flag {fired.flag} was turned on at {_dt(fired.at).isoformat()}"
        cleared = self._cleared(svc, st, rearm.TRIGGER, old, rule=rule, now=now, value=value,
                                reason=f"superseded by {new.episode_id}: {why}")
        return _queue(st, cleared) + _queue(st, _fired(svc, rearm.TRIGGER, new, rule=rule, now=now, samples=count,
                                                       detail=f"re-armed: {why}"))

    # ---- budgets -------------------------------------------------------------------------
    def _budget_windows(self) -> list[float]:
        alerts = self.policy.budget.alerts
        return sorted({w for a in alerts for w in (a.long, a.short)})

    def _maybe_report_budgets(self, svc: str, st: dict[str, Any], now: float) -> list[Event]:
        if st["budget_at"] is not None and now - st["budget_at"] < self._report_every:
            return []
        st["budget_at"] = now
        out: list[Event] = []
        worst: tuple[float, int, str] | None = None
        for basis, (minutes, hours) in {"requests": ("rm", "rh"), "probes": ("pm", "ph")}.items():
            report, burn_ratio = self.budget(svc, basis=basis, minutes=minutes, hours=hours, now=now)
            if report is None:
                continue
            st["budgets"][basis] = report.model_dump(mode="json", exclude={"id", "type"})
            out.append(report)
            if burn_ratio is not None and (worst is None or burn_ratio[0] > worst[0]):
                worst = (burn_ratio[0], burn_ratio[1], f"{basis}: {', '.join(report.alerts) or 'no page alert'}")
        rule = self.policy.triggers.budget_burn
        if worst is not None:
            out += self._step(svc, st, "budget_burn", rule, now=now, value=worst[0], samples=worst[1], detail=worst[2])
        else:  # no page rule saw enough events: no data
            out += self._step(svc, st, "budget_burn", rule, now=now, value=None, samples=0)
        return out

    def budget(self, svc: str, *, basis: str, minutes: str, hours: str, now: float) -> tuple[BudgetReported | None, tuple[float, int] | None]:
        """The budget report of one basis and (page burn / factor, short-window events) for budget_burn."""
        policy = self.policy.budget
        windows = self._budget_windows()
        minute_buckets = [(m * 60.0, Counts(v[0], v[1])) for m, v in self.series(svc, minutes)]
        hour_buckets = [(h * 3600.0, Counts(v[0], v[1])) for h, v in self.series(svc, hours)]
        counts = budgets.window_counts(minute_buckets, now=now, windows=[w for w in windows if w < _DAY])
        counts |= budgets.window_counts(hour_buckets, now=now, windows=[w for w in windows if w >= _DAY] + [policy.period])
        period = counts.pop(policy.period)
        if period.total == 0:
            return None, None
        burn = {w: budgets.burn_rate(c, objective=policy.objective) for w, c in counts.items()}
        min_events = self.policy.triggers.budget_burn.min_samples
        firing = budgets.firing_alerts(policy.alerts, burn=burn, short_counts=counts, min_events=min_events)
        left, minutes_left = budgets.budget_remaining(period, objective=policy.objective, period=timedelta(seconds=policy.period))
        report = BudgetReported(
            time=_dt(now), service=svc, basis=basis, objective=policy.objective, period_days=policy.period / _DAY,
            availability=budgets.availability(period), budget_remaining_ratio=left, budget_remaining_minutes=minutes_left,
            burn_rates=[BurnRate(window=_window_name(w), rate=r) for w, r in burn.items() if r is not None],
            alerts=[a.name for a in firing], good=period.good, total=period.total,
        )
        pages = [(min(burn[a.long] or 0.0, burn[a.short] or 0.0) / a.factor, counts[a.short].total)
                 for a in policy.alerts if a.severity == "page" and counts[a.short].total >= min_events]
        return report, (max(pages) if pages else None)

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

    # ---- state ---------------------------------------------------------------------------
    def _admit(self, event: Event) -> float:
        """The clock's now, once `event` passed the checks (`Rejected` otherwise)."""
        now = self.clock()
        check(event, now=now, window=self.policy.event_time)
        return now

    def _status(self, svc: str, clock: float) -> dict[str, Any]:
        st = self.status.get(svc)
        if st is None:
            return {"watermark": None, "triggers": {}, "instances": {}, "probes": {}, "budget_at": None, "budgets": {},
                    "seconds": [], "open": {}, "seen": {}, "outbox": []}
        st = dict(st)
        st.setdefault("seen", {})
        st.setdefault("outbox", [])
        if st["watermark"] is not None and st["watermark"] > clock + self.policy.event_time.max_ahead:
            self._heal(svc, st, clock)
        if "seconds" not in st:  # written before the hot window moved into the status value
            st["seconds"] = []
            for sec in self.store.ids(svc, "rs"):
                self.store.table.pop(self.store.key(svc, "rs", sec), None)
            self.store.table.pop(f"{svc}|idx|rs", None)
        st.setdefault("open", {})
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

    def _heal(self, svc: str, st: dict[str, Any], now: float) -> None:
        """State moved into the future by a record accepted before the event-time checks: bring it back."""
        log.warning("sla state of %s was ahead of now; dropping its future part", svc)
        st["watermark"] = st["budget_at"] = None
        st["seconds"] = [e for e in st["seconds"] if e[0] <= now]
        st["open"] = {series: v for series, v in st["open"].items() if v[0] * _size(series) <= now}
        st["seen"] = {k: v for k, v in st["seen"].items() if v <= now * 1000}
        st["triggers"] = {k: {**v, "since": min(v["since"], now)} if v.get("since") else v for k, v in st["triggers"].items()}
        for series in ("rm", "rh", "lm", "pm", "ph"):
            ids = self.store.ids(svc, series)
            future = [b for b in ids if b * _size(series) > now]
            for b in future:
                self.store.table.pop(self.store.key(svc, series, b), None)
            if future:
                self.store.table[f"{svc}|idx|{series}"] = [b for b in ids if b not in future]

    @staticmethod
    def _advance(st: dict[str, Any], t: float, clock: float) -> float:
        """The service's watermark after an event at `t`: the latest event time, never ahead of `clock`."""
        wm = t if st["watermark"] is None else max(st["watermark"], t)
        st["watermark"] = min(wm, clock)
        return float(st["watermark"])

    def services(self) -> list[str]:
        return sorted(self.status.keys())


def _fired(svc: str, trigger: str, state: TriggerState, *, rule: TriggerRule, now: float, samples: int,
           detail: str) -> TriggerFired:
    assert state.episode_id is not None and state.first_bad_at is not None
    return TriggerFired(
        id=uuid5(NAMESPACE_URL, f"{state.episode_id}#fired"), time=_dt(now), service=svc,
        trigger=trigger, episode_id=state.episode_id, value=state.value or 0.0, threshold=rule.threshold,
        window_seconds=rule.window, samples=samples, first_bad_at=_dt(state.first_bad_at),
        instance=state.instance, detail=detail,
    )


def _phases(st: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {k: (v.get("phase"), v.get("since"), v.get("episode_id")) for k, v in st["triggers"].items()}


def _clear_reason(before: TriggerState, after: TriggerState, *, rule: TriggerRule, samples: int, now: float) -> str:
    if not after.no_data:
        return "recovered"
    held = now - before.since if before.phase == "clearing" and before.since is not None else 0.0
    return f"no data: {samples} samples in the last {rule.window:g} s (fewer than {rule.min_samples}) for {held:g} s"


def _window_name(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _merge_wire(into: dict[str, int], wire: dict[str, int]) -> None:
    """Add sketch bucket counts on the wire form (string keys): no int parsing per event."""
    get = into.get
    for b, c in wire.items():
        into[b] = get(b, 0) + c


def _add_second(st: dict[str, Any], sec: int, count: int, errors: int, total_ms: float, wire: dict[str, int], *,
                keep_from: int) -> None:
    """Add a report to its second in `st["seconds"]` (`[sec, count, errors, total_ms, wire]`, oldest first);
    seconds before `keep_from` are dropped. A list, not a dict: it survives the JSON changelog unchanged."""
    seconds: list[list[Any]] = st["seconds"]
    for entry in reversed(seconds):  # the newest seconds are the likely ones
        if entry[0] == sec:
            entry[1] += count
            entry[2] += errors
            entry[3] += total_ms
            _merge_wire(entry[4], wire)
            break
        if entry[0] < sec:
            bisect.insort(seconds, [sec, count, errors, total_ms, dict(wire)], key=_first)
            break
    else:
        seconds.insert(0, [sec, count, errors, total_ms, dict(wire)])
    if seconds[0][0] < keep_from:
        st["seconds"] = [e for e in seconds if e[0] >= keep_from]


def _size(series: str) -> int:
    return 3600 if series.endswith("h") else 60


def _queue(st: dict[str, Any], event: TriggerFired | TriggerCleared) -> list[Event]:
    """`event` as an output, also kept in the service's outbox until it is marked published."""
    outbox = st["outbox"] = [*st["outbox"], event.model_dump(mode="json")]
    if len(outbox) > _MAX_OUTBOX:
        log.error("sla outbox of %s is full: dropping %d unpublished trigger events", event.service, len(outbox) - _MAX_OUTBOX)
        st["outbox"] = outbox[-_MAX_OUTBOX:]
    return [event]


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


def _first(entry: list[Any]) -> Any:
    return entry[0]


def _quantile(wire: dict[str, int], q: float) -> float | None:
    """`LatencySketch.from_wire(wire).quantile(q)` without checking `wire` again (every report in it was checked)."""
    buckets = sorted((int(b), c) for b, c in wire.items())
    count = sum(c for _, c in buckets)
    if count == 0:
        return None
    rank = q * (count - 1)
    seen = 0
    for b, c in buckets:
        seen += c
        if seen > rank:
            return LatencySketch.value_of(b)
    return LatencySketch.value_of(buckets[-1][0])


def _sum_seconds(seconds: Any, start: float, end: float, latency: bool) -> tuple[int, int, float, dict[str, int]]:
    """(count, errors, latency sum, merged wire sketch) of the seconds wholly inside `[start, end)`."""
    count = errors = 0
    total_ms = 0.0
    merged: dict[str, int] = {}
    for sec, c, e, ms, wire in seconds:
        if sec + 1 <= start or sec >= end:
            continue
        count += c
        errors += e
        if latency:
            total_ms += ms
            _merge_wire(merged, wire)
    return count, errors, total_ms, merged
