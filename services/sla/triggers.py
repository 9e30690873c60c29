"""One trigger evaluation on a service's status: `detection.step`, then the events of a transition.

A transition's event is also kept in the status' outbox (`queue`) until the edge has published
it, so a crash between the state write and the publish re-publishes instead of losing it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from services.sla.detection import TriggerState, step
from services.sla.policy import TriggerRule
from services.sla.state import Status
from shared.events import Event, TriggerCleared, TriggerFired

__all__ = ["evaluate", "evaluate_memory", "evaluate_db", "fired", "cleared", "queue", "phases", "MAX_OUTBOX"]

MAX_OUTBOX = 100  # unpublished trigger events per service (the oldest go first)
log = logging.getLogger(__name__)


def evaluate(svc: str, st: Status, trigger: str, rule: TriggerRule, *, now: float, value: float | None,
             samples: int, instance: str | None = None, detail: str = "") -> list[Event]:
    """Step `trigger` of `st` with this evaluation; the fired / cleared event when it changed."""
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
        return queue(st, fired(svc, trigger, after, rule=rule, now=now, samples=samples, detail=detail))
    if transition == "cleared":
        reason = _clear_reason(before, after, rule=rule, samples=samples, now=now)
        return queue(st, cleared(svc, st, trigger, after, rule=rule, now=now, value=value, reason=reason))
    return []


def evaluate_memory(svc: str, st: Status, rule: TriggerRule, *, now: float) -> list[Event]:
    """memory_high on the instance whose lowest of its last `min_samples` reports is highest: no single spike."""
    best: tuple[float, int, str] | None = None
    for name, inst in st["instances"].items():
        recent = [pct for t, pct in inst["mem"] if t > now - rule.window]
        if len(recent) >= rule.min_samples:
            candidate = (min(recent[-rule.min_samples:]), len(recent), name)
            best = candidate if best is None or candidate[0] > best[0] else best
    if best is None:  # no instance reported enough: no data
        return evaluate(svc, st, "memory_high", rule, now=now, value=None, samples=0)
    return evaluate(svc, st, "memory_high", rule, now=now, value=best[0], samples=best[1], instance=best[2],
                    detail=f"instance {best[2]}: lowest of its last {rule.min_samples} reports")


def evaluate_db(svc: str, st: Status, rule: TriggerRule, *, now: float) -> list[Event]:
    """db_connection_lost on the instances' pools and the postgres probes seen within the window."""
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
        return evaluate(svc, st, "db_connection_lost", rule, now=now, value=None, samples=0)
    instance = lost[0].split("/")[0] if lost and "/" in lost[0] else None
    return evaluate(svc, st, "db_connection_lost", rule, now=now, value=1.0 if lost else 0.0, samples=seen,
                    instance=instance, detail=", ".join(lost) or "connected")


def fired(svc: str, trigger: str, state: TriggerState, *, rule: TriggerRule, now: float, samples: int,
          detail: str) -> TriggerFired:
    assert state.episode_id is not None and state.first_bad_at is not None
    return TriggerFired(
        id=uuid5(NAMESPACE_URL, f"{state.episode_id}#fired"), time=_dt(now), service=svc,
        trigger=trigger, episode_id=state.episode_id, value=state.value or 0.0, threshold=rule.threshold,
        window_seconds=rule.window, samples=samples, first_bad_at=_dt(state.first_bad_at),
        instance=state.instance, detail=detail,
    )


def cleared(svc: str, st: Status, trigger: str, state: TriggerState, *, rule: TriggerRule, now: float,
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


def queue(st: Status, event: TriggerFired | TriggerCleared) -> list[Event]:
    """`event` as an output, also kept in the service's outbox until it is marked published."""
    outbox = st["outbox"] = [*st["outbox"], event.model_dump(mode="json")]
    if len(outbox) > MAX_OUTBOX:
        log.error("sla outbox of %s is full: dropping %d unpublished trigger events", event.service, len(outbox) - MAX_OUTBOX)
        st["outbox"] = outbox[-MAX_OUTBOX:]
    return [event]


def phases(st: Status) -> dict[str, tuple[Any, ...]]:
    return {k: (v.get("phase"), v.get("since"), v.get("episode_id")) for k, v in st["triggers"].items()}


def _clear_reason(before: TriggerState, after: TriggerState, *, rule: TriggerRule, samples: int, now: float) -> str:
    if not after.no_data:
        return "recovered"
    held = now - before.since if before.phase == "clearing" and before.since is not None else 0.0
    return f"no data: {samples} samples in the last {rule.window:g} s (fewer than {rule.min_samples}) for {held:g} s"


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)
