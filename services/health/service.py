"""The core: hysteresis per target (down after N failures, up after M successes) and the
IETF health-check document (draft-inadarei-api-health-check). No framework imports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = ["ProbeResult", "TargetState", "Hysteresis", "COMPONENT_TYPES", "MEASUREMENTS", "health_document",
           "overall_status", "check_status"]

Status = Literal["pass", "warn", "fail"]
State = Literal["unknown", "up", "down"]
COMPONENT_TYPES = {"http": "component", "process": "component", "postgres": "datastore", "redis": "datastore",
                   "kafka": "system", "tcp": "system"}
MEASUREMENTS = {"http": "responseTime", "tcp": "connectTime", "postgres": "responseTime", "redis": "responseTime",
                "kafka": "brokers", "process": "memoryUtilization"}


@dataclass(frozen=True)
class ProbeResult:
    status: str
    latency_ms: float
    observed_value: float | str | None
    observed_unit: str | None
    message: str


@dataclass
class TargetState:
    name: str
    service: str
    kind: str
    role: str
    critical: bool
    state: State = "unknown"
    ever_up: bool = False
    failures: int = 0
    successes: int = 0
    last: ProbeResult | None = None
    last_time: datetime | None = None
    since: datetime | None = None
    failing_since: datetime | None = None  # the first failure of the current run of failures

    @property
    def consecutive(self) -> int:
        return self.failures or self.successes

    @property
    def settling(self) -> bool:
        """No verdict yet, or down and never seen up since the start: re-probed fast."""
        return self.state == "unknown" or (self.state == "down" and not self.ever_up)


@dataclass
class Hysteresis:
    """Debounces probe results into up/down. A target starts `unknown`: its first success
    makes it up at once, `down_after` failures in a row make it down. Between known states
    a change needs `down_after` failures or `up_after` successes in a row. `warn` counts
    as a success."""

    down_after: int
    up_after: int

    def observe(self, target: TargetState, result: ProbeResult, now: datetime) -> TargetState:
        ok = result.status != "fail"
        if ok:
            target.successes += 1
            target.failures = 0
        else:
            target.failures += 1
            target.successes = 0
            if target.failures == 1:
                target.failing_since = now
        before = target.state
        if target.failures >= self.down_after and before != "down":
            target.state = "down"
        elif ok and (before == "unknown" or (before == "down" and target.successes >= self.up_after)):
            target.state = "up"
        if target.state != before:
            target.since = now
        target.ever_up = target.ever_up or target.state == "up"
        target.last = result
        target.last_time = now
        return target


def check_status(t: TargetState) -> Status:
    if t.state == "down":
        return "fail"
    if t.state == "unknown" or (t.last is not None and t.last.status != "pass"):
        return "warn"  # no verdict yet, or up but this probe warned or failed (not yet down)
    return "pass"


def overall_status(targets: list[TargetState]) -> Status:
    worst: Status = "pass"
    for t in targets:
        s = check_status(t)
        if s == "fail" and t.critical:
            return "fail"
        if s != "pass":
            worst = "warn"
    return worst


def health_document(targets: list[TargetState], *, service_id: str = "safeguard", version: str = "1",
                    release: str = "0.1.0") -> dict[str, Any]:
    checks: dict[str, list[dict[str, Any]]] = {}
    probed = [t for t in targets if t.last is not None]
    for t in probed:
        assert t.last is not None and t.last_time is not None
        entry: dict[str, Any] = {
            "componentId": t.name, "componentType": COMPONENT_TYPES[t.kind], "observedValue": t.last.observed_value,
            "observedUnit": t.last.observed_unit, "status": check_status(t), "time": t.last_time.isoformat(),
            "service": t.service, "state": t.state, "consecutive": t.consecutive, "critical": t.critical,
        }
        if t.last.message:
            entry["output"] = t.last.message
        checks[f"{t.name}:{MEASUREMENTS[t.kind]}"] = [entry]
    doc: dict[str, Any] = {
        "status": overall_status(targets), "version": version, "releaseId": release,
        "serviceId": service_id, "description": "Safeguard: health of the protected app and its dependencies",
        "checks": checks,
    }
    if not probed:
        doc["output"] = "no probe has completed yet"
    else:
        parts = [f"{label}: " + ", ".join(sorted(t.name for t in targets if t.state == state))
                 for label, state in (("down", "down"), ("no verdict yet", "unknown"))
                 if any(t.state == state for t in targets)]
        if parts:
            doc["output"] = "; ".join(parts)
    return doc
