"""The operator's view of the whole system, projected from topics (no framework imports).

Fed by `feed.py` with flags.state, incidents.events, sla.triggers, sla.budgets and
health.checks (process stats and breaker changes of the protected apps); rendered together
with the health service's own probe states by `render()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.health.service import TargetState, check_status
from shared.events import (
    UNRESPONSIVE, BudgetReported, CircuitBreakerStateChanged, Event, FlagSnapshot, IncidentAcknowledged,
    IncidentEscalated, IncidentMitigated, IncidentOpened, IncidentResolved, ProcessStatsReported, TriggerCleared,
    TriggerFired, utcnow,
)

__all__ = ["SystemView"]


@dataclass
class SystemView:
    instance_stale_s: float = 30.0
    flags: dict[str, dict[str, Any]] = field(default_factory=dict)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)
    triggers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    instances: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    breakers: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    last_event_at: datetime | None = None
    applied: int = 0

    # ------------------------------------------------------------------ apply
    def open_episode(self, service: str, trigger: str = UNRESPONSIVE) -> str | None:
        """The episode of `trigger` firing for `service`, as read from sla.triggers (None when none is)."""
        found = self.triggers.get((service, trigger))
        return None if found is None else str(found["episode_id"])

    def apply(self, event: Event) -> None:
        self.applied += 1
        self.last_event_at = utcnow()
        if not (self._apply_flag_or_incident(event) or self._apply_sla(event) or self._apply_app(event)):
            self.applied -= 1

    def _apply_flag_or_incident(self, event: Event) -> bool:
        match event:
            case FlagSnapshot():
                d = event.definition
                self.flags[event.flag_key] = {"state": d.get("state"), "defaultVariant": d.get("defaultVariant"),
                                              "version": event.version, "updated_at": event.time.isoformat()}
            case IncidentOpened():
                self.incidents[event.incident_id] = {
                    "incident_id": event.incident_id, "service": event.service, "title": event.title,
                    "severity": event.severity, "trigger": event.trigger, "status": "open", "level": 1,
                    "opened_at": event.time.isoformat()}
            case IncidentEscalated() if event.incident_id in self.incidents:
                self.incidents[event.incident_id].update(level=event.level, escalated_to=event.target)
            case IncidentAcknowledged() if event.incident_id in self.incidents:
                self.incidents[event.incident_id].update(status="acknowledged", acknowledged_by=event.by)
            case IncidentMitigated() if event.incident_id in self.incidents:
                self.incidents[event.incident_id].update(status="mitigated")
            case IncidentResolved():
                self.incidents.pop(event.incident_id, None)
            case _:
                return False
        return True

    def _apply_sla(self, event: Event) -> bool:
        match event:
            case TriggerFired():
                self.triggers[(event.service, event.trigger)] = {
                    "service": event.service, "trigger": event.trigger, "episode_id": event.episode_id,
                    "value": event.value, "threshold": event.threshold, "fired_at": event.time.isoformat()}
            case TriggerCleared():
                found = self.triggers.get((event.service, event.trigger))
                if found is not None and found["episode_id"] == event.episode_id:
                    del self.triggers[(event.service, event.trigger)]
            case BudgetReported():
                self.budgets[event.service] = {
                    "objective": event.objective, "availability": event.availability, "basis": event.basis,
                    "budget_remaining_ratio": event.budget_remaining_ratio,
                    "budget_remaining_minutes": event.budget_remaining_minutes,
                    "burn_rates": {b.window: b.rate for b in event.burn_rates}, "alerts": list(event.alerts),
                    "reported_at": event.time.isoformat()}
            case _:
                return False
        return True

    def _apply_app(self, event: Event) -> bool:
        match event:
            case ProcessStatsReported():
                self.instances.setdefault(event.service, {})[event.instance] = {
                    "pid": event.pid, "memory_percent": event.memory_percent, "rss_bytes": event.rss_bytes,
                    "pools": [p.model_dump() for p in event.pools], "breakers": dict(event.breakers),
                    "seen_at": event.time}
                for name, state in event.breakers.items():
                    self._breaker(event.service, event.instance, name)["state"] = state
            case CircuitBreakerStateChanged():
                b = self._breaker(event.service, event.instance, event.breaker)
                b.update(state=event.to_state, since=event.time.isoformat(), reason=event.reason,
                         shared=event.shared)
            case _:
                return False
        return True

    def forget_flag(self, flag_key: str) -> None:
        """A tombstone on flags.state: the flag was deleted."""
        self.flags.pop(flag_key, None)

    def _breaker(self, service: str, instance: str, name: str) -> dict[str, Any]:
        return self.breakers.setdefault(service, {}).setdefault(name, {}).setdefault(instance, {})

    # ------------------------------------------------------------------ render
    def render(self, targets: list[TargetState], *, feed: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()
        notes: list[str] = []
        groups: dict[str, dict[str, Any]] = {"service": {}, "dependency": {}}
        for t in targets:
            entry = self._target(t)
            svc = groups[t.role].setdefault(t.service, {"state": "unknown", "checks": {}})
            svc["checks"][t.name] = entry
            if t.state == "down":
                notes.append(f"{t.name} ({t.service}) is down since {t.since.isoformat() if t.since else '?'}"
                             f": {t.last.message if t.last else ''}".rstrip(": "))
            elif t.state == "unknown":
                notes.append(f"{t.name} ({t.service}) has no verdict yet (starting)")
        for svc in (*groups["service"].values(), *groups["dependency"].values()):
            svc["state"] = self._service_state(list(svc["checks"].values()))
        apps = self._apps(now, notes)
        if not feed.get("connected"):
            notes.append("event feed from Kafka is not connected: flags, incidents, SLA and app data may be stale")
        status = self._overall(targets)
        return {
            "status": status, "generated_at": now.isoformat(), "services": groups["service"],
            "dependencies": groups["dependency"], "apps": apps, "breakers": self._breakers(),
            "flags": dict(sorted(self.flags.items())),
            "incidents": {"open": sorted(self.incidents.values(), key=lambda i: i["opened_at"])},
            "sla": {"budgets": self.budgets, "active_triggers": list(self.triggers.values())},
            "feed": {**feed, "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None},
            "notes": notes,
        }

    @staticmethod
    def _service_state(checks: list[dict[str, Any]]) -> str:
        states = [c["state"] for c in checks]
        if any(c["state"] == "down" and c["critical"] for c in checks) or (states and all(s == "down" for s in states)):
            return "down"
        if "down" in states:
            return "degraded"
        if not states or "unknown" in states:
            return "unknown"
        return "degraded" if any(c["status"] != "pass" for c in checks) else "up"

    @staticmethod
    def _target(t: TargetState) -> dict[str, Any]:
        return {
            "kind": t.kind, "state": t.state, "status": check_status(t) if t.last else "unknown",
            "critical": t.critical, "since": t.since.isoformat() if t.since else None,
            "last_checked": t.last_time.isoformat() if t.last_time else None,
            "observed_value": t.last.observed_value if t.last else None,
            "observed_unit": t.last.observed_unit if t.last else None,
            "message": t.last.message if t.last else "not probed yet",
        }

    def _apps(self, now: datetime, notes: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        stale_after = timedelta(seconds=self.instance_stale_s)
        for service, instances in sorted(self.instances.items()):
            rows = {}
            for name, inst in sorted(instances.items()):
                stale = now - inst["seen_at"] > stale_after
                if stale:
                    notes.append(f"{service}/{name} has not reported for over {self.instance_stale_s:g} s")
                rows[name] = {**inst, "seen_at": inst["seen_at"].isoformat(), "stale": stale}
            out[service] = {"instances": rows}
        return out

    def _breakers(self) -> dict[str, Any]:
        rank = {"closed": 0, "disabled": 0, "half_open": 1, "open": 2, "forced_open": 2}
        out: dict[str, Any] = {}
        for service, by_name in sorted(self.breakers.items()):
            out[service] = {}
            for name, by_instance in sorted(by_name.items()):
                states = [i.get("state", "closed") for i in by_instance.values()]
                worst = max(states, key=lambda s: rank.get(s, 0)) if states else "closed"
                out[service][name] = {"state": worst, "instances": by_instance}
        return out

    def _overall(self, targets: list[TargetState]) -> str:
        known = [t for t in targets if t.state != "unknown"]
        if any(t.state == "down" and t.critical for t in known):
            return "major_outage"
        if (any(check_status(t) != "pass" for t in known) or self.incidents or self.triggers
                or any(b["state"] != "closed" for s in self._breakers().values() for b in s.values())):
            return "degraded"
        return "unknown" if len(known) < len(targets) else "operational"
