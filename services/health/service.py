"""The core: hysteresis per target (down after N failures, up after M successes) and the
IETF health-check document (draft-inadarei-api-health-check). No framework imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["ProbeResult", "TargetState", "Hysteresis", "COMPONENT_TYPES", "MEASUREMENTS", "health_document",
           "overall_status"]

Status = Literal["pass", "warn", "fail"]
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
    state: Literal["up", "down"] | None = None
    failures: int = 0
    successes: int = 0
    last: ProbeResult | None = None
    last_time: datetime | None = None
    since: datetime | None = None

    @property
    def consecutive(self) -> int:
        return self.failures or self.successes


@dataclass
class Hysteresis:
    """Debounces probe results into up/down. The first result sets the state directly
    (a target down at start is reported down at once); after that a change needs
    `down_after` failures or `up_after` successes in a row. `warn` counts as a success."""

    down_after: int
    up_after: int
    targets: dict[str, TargetState] = field(default_factory=dict)

    def observe(self, target: TargetState, result: ProbeResult, now: datetime) -> TargetState:
        ok = result.status != "fail"
        if ok:
            target.successes += 1
            target.failures = 0
        else:
            target.failures += 1
            target.successes = 0
        before = target.state
        if before is None:
            target.state = "up" if ok else "down"
        elif before == "up" and target.failures >= self.down_after:
            target.state = "down"
        elif before == "down" and target.successes >= self.up_after:
            target.state = "up"
        if target.state != before:
            target.since = now
        target.last = result
        target.last_time = now
        return target


def check_status(t: TargetState) -> Status:
    if t.state == "down":
        return "fail"
    if t.last is not None and t.last.status != "pass":
        return "warn"  # up, but this probe warned or failed (not yet down)
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
        "status": overall_status(probed) if probed else "warn", "version": version, "releaseId": release,
        "serviceId": service_id, "description": "Safeguard: health of the protected app and its dependencies",
        "checks": checks,
    }
    if not probed:
        doc["output"] = "no probe has completed yet"
    else:
        down = [t.name for t in probed if t.state == "down"]
        if down:
            doc["output"] = "down: " + ", ".join(sorted(down))
    return doc
