"""Re-arming an error-rate episode when a new feature is turned on during it (issue 14).

Recovery answers `error_rate_high` once per episode (turn the new features off). If a person
turns a new feature on while that episode is still firing, nothing would protect it: the
episode already fired. So the flag change marks the episode (`mark`), and the requests that
come *after* the change are judged on their own (`judge`): bad for `hold_fire` and the
episode is superseded by a new one (the core emits TriggerCleared for the old and TriggerFired
for the new, so recovery acts again); the mark goes when the episode ends. Pure functions on
a service's status (`state.Status`, its `rearm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from services.sla.detection import Rule
from services.sla.state import Status

__all__ = ["Rearm", "mark", "judge", "TRIGGER"]

TRIGGER = "error_rate_high"


@dataclass(frozen=True)
class Rearm:
    """The re-arm fires: `flag` was turned on at `at`, and requests after it were bad from `bad_since`."""

    flag: str
    at: float
    bad_since: float


def mark(st: Status, *, flag: str, at: float) -> bool:
    """Mark a firing error-rate episode of `st`; False when there is none (or a later change marked it)."""
    state = st["triggers"].get(TRIGGER)
    if not state or state["phase"] not in ("firing", "clearing") or state.get("fired_at") is None:
        return False
    if at < state["fired_at"]:
        return False  # turned on before the episode fired: recovery's action came after it
    current = st.get("rearm")
    if current and current["at"] >= at:
        return False  # a replay, or an older change than the one already marked
    st["rearm"] = {"flag": flag, "at": at, "bad_since": None}
    return True


def judge(st: Status, *, rule: Rule, now: float, count: int, errors: int) -> Rearm | None:
    """`count` / `errors`: the requests in the window since the change. Returns the re-arm when it fires."""
    current = st.get("rearm")
    if not current:
        return None
    state = st["triggers"].get(TRIGGER)
    if not state or state["phase"] not in ("firing", "clearing"):
        st["rearm"] = None  # the episode ended on its own: a new one starts as usual
        return None
    if count < rule.min_samples:
        return None  # too little since the change to judge it
    if not errors / count > rule.threshold:
        st["rearm"] = {**current, "bad_since": None}
        return None
    bad_since = current["bad_since"] if current["bad_since"] is not None else now
    if now - bad_since < rule.hold_fire:
        st["rearm"] = {**current, "bad_since": bad_since}
        return None
    st["rearm"] = None
    return Rearm(flag=current["flag"], at=current["at"], bad_since=bad_since)
