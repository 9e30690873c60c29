"""Trigger detection: a hysteresis state machine per (service, trigger), pure and serialisable.

    ok --bad--> pending --bad for hold_fire--> firing --good--> clearing --good for hold_clear--> ok
                   |<--not bad------'             ^------not good------'

"bad" is `value > threshold`, "good" is `value <= clear_threshold`. An evaluation with
fewer than `min_samples` samples cannot judge: it is "no data" unless what little it saw is
bad. No data ends a pending phase and counts as good for clearing (a firing trigger whose
window emptied clears after `hold_clear`, with `no_data` set, as a Prometheus alert whose
expression returns nothing resolves); a thin but bad window changes nothing. `fired` is
returned exactly once per episode (at pending -> firing) and `cleared` once (at clearing ->
ok). The state is a plain dict in the Faust table, so a restart resumes mid-hold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

__all__ = ["Rule", "TriggerState", "Transition", "step", "episode_id"]

Phase = Literal["ok", "pending", "firing", "clearing"]
Transition = Literal["fired", "cleared"]


class Rule(Protocol):
    @property
    def threshold(self) -> float: ...
    @property
    def min_samples(self) -> int: ...
    @property
    def hold_fire(self) -> float: ...
    @property
    def hold_clear(self) -> float: ...

    @property
    def clear_at(self) -> float: ...


@dataclass(frozen=True)
class TriggerState:
    phase: Phase = "ok"
    since: float | None = None  # when the current pending / clearing phase began
    first_bad_at: float | None = None
    fired_at: float | None = None
    episode_id: str | None = None
    value: float | None = None
    peak: float | None = None
    samples: int = 0
    instance: str | None = None
    no_data: bool = False  # the current clearing hold saw no data to judge (the window emptied)

    @property
    def active(self) -> bool:
        return self.phase in ("firing", "clearing")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)  # flat fields: no need for asdict's deep copy

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TriggerState:
        return cls(**data) if data else cls()


def episode_id(*, service: str, trigger: str, first_bad_at: float) -> str:
    """Deterministic, so a replay after a crash names the same episode."""
    return f"{service}/{trigger}/{int(first_bad_at * 1000)}"


def step(
    state: TriggerState, *, rule: Rule, now: float, value: float | None, samples: int,
    service: str, trigger: str, instance: str | None = None,
) -> tuple[TriggerState, Transition | None]:
    """Advance one evaluation at event time `now` (seconds)."""
    if value is None or samples < rule.min_samples:
        return _without_data(state, rule=rule, now=now, value=value, samples=samples)
    bad, good = value > rule.threshold, value <= rule.clear_at
    seen = replace(state, value=value, samples=samples, no_data=False)
    if state.phase == "ok":
        if not bad:
            return seen, None
        seen = replace(seen, phase="pending", since=now, first_bad_at=now, peak=value, instance=instance)
        return _maybe_fire(seen, rule=rule, now=now, service=service, trigger=trigger)
    if state.phase == "pending":
        if not bad:
            return replace(seen, phase="ok", since=None, first_bad_at=None, peak=None), None
        seen = replace(seen, peak=max(value, state.peak or value), instance=instance or state.instance)
        return _maybe_fire(seen, rule=rule, now=now, service=service, trigger=trigger)
    peak = max(value, state.peak or value)
    if state.phase == "firing":
        if good:
            seen = replace(seen, phase="clearing", since=now, peak=peak)
            return _maybe_clear(seen, rule=rule, now=now)
        return replace(seen, peak=peak), None
    if not good:  # clearing, went bad again: same episode
        return replace(seen, phase="firing", since=state.fired_at, peak=peak), None
    return _maybe_clear(replace(seen, peak=peak), rule=rule, now=now)


def _without_data(state: TriggerState, *, rule: Rule, now: float, value: float | None,
                  samples: int) -> tuple[TriggerState, Transition | None]:
    """An evaluation too thin to judge: no data, unless the little it saw is bad (that changes nothing)."""
    if state.phase == "ok" or (value is not None and value > rule.threshold):
        return state, None
    if state.phase == "pending":
        return replace(state, phase="ok", since=None, first_bad_at=None, peak=None, samples=samples), None
    if state.phase == "firing":
        return _maybe_clear(replace(state, phase="clearing", since=now, samples=samples, no_data=True), rule=rule, now=now)
    return _maybe_clear(replace(state, samples=samples), rule=rule, now=now)


def _maybe_fire(state: TriggerState, *, rule: Rule, now: float, service: str, trigger: str) -> tuple[TriggerState, Transition | None]:
    assert state.since is not None and state.first_bad_at is not None
    if now - state.since < rule.hold_fire:
        return state, None
    ep = episode_id(service=service, trigger=trigger, first_bad_at=state.first_bad_at)
    return replace(state, phase="firing", since=now, fired_at=now, episode_id=ep), "fired"


def _maybe_clear(state: TriggerState, *, rule: Rule, now: float) -> tuple[TriggerState, Transition | None]:
    assert state.since is not None
    if now - state.since < rule.hold_clear:
        return state, None
    return replace(state, phase="ok", since=None), "cleared"
