"""A new feature turned on during a firing error-rate episode re-arms it (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.sla.flagwatch import turned_on
from services.sla.service import SlaCore
from shared.events import Event, FlagChanged, TriggerCleared, TriggerFired
from shared.testing import FakeClock
from tests.unit.sla.helpers import T0, requests
from tests.unit.sla.test_tick import setup


def feed(core: SlaCore, clock: FakeClock, seconds: range, *, errors: int) -> list[Event]:
    out: list[Event] = []
    for s in seconds:
        clock.now = T0.timestamp() + s + 1
        out += [e for e in core.observe_requests(requests(s, errors=errors)) if isinstance(e, TriggerFired | TriggerCleared)]
    return out


def firing() -> tuple[SlaCore, FakeClock, TriggerFired]:
    core, clock, _ = setup()
    out = feed(core, clock, range(10), errors=0) + feed(core, clock, range(10, 20), errors=50)
    assert len(out) == 1 and isinstance(out[0], TriggerFired)
    return core, clock, out[0]


def test_errors_continuing_after_a_new_feature_is_turned_on_start_a_new_episode() -> None:
    core, clock, first = firing()
    assert core.flag_turned_on(service="shop", flag="gamification", at=T0 + timedelta(seconds=20.5))
    out = feed(core, clock, range(20, 26), errors=30)
    assert [type(e) for e in out] == [TriggerCleared, TriggerFired]
    cleared, fired = out
    assert isinstance(cleared, TriggerCleared) and isinstance(fired, TriggerFired)
    assert cleared.episode_id == first.episode_id and fired.episode_id != first.episode_id
    # only the seconds after the change count: 21 s ends at 22 s (bad), 1 s hold
    assert fired.first_bad_at == T0 + timedelta(seconds=22) and fired.time == T0 + timedelta(seconds=23)
    assert fired.value == 0.3 and "gamification" in fired.detail
    assert core.status["shop"]["clears"]["error_rate_high"]["reason"].startswith(f"superseded by {fired.episode_id}")
    assert core.status["shop"]["triggers"]["error_rate_high"]["episode_id"] == fired.episode_id
    assert feed(core, clock, range(26, 30), errors=30) == []  # one re-arm per change


def test_no_new_episode_when_errors_stop_after_the_feature_is_turned_on() -> None:
    core, clock, first = firing()
    assert core.flag_turned_on(service="shop", flag="gamification", at=T0 + timedelta(seconds=20.5))
    out = feed(core, clock, range(20, 40), errors=0)
    assert [(type(e), e.episode_id) for e in out] == [(TriggerCleared, first.episode_id)]  # type: ignore[attr-defined]
    assert core.status["shop"].get("rearm") is None
    assert core.status["shop"]["clears"]["error_rate_high"]["reason"] == "recovered"


def test_only_a_firing_episode_is_marked_and_a_replay_marks_nothing() -> None:
    core, clock, _ = setup()
    assert not core.flag_turned_on(service="shop", flag="x", at=T0)  # unknown service
    feed(core, clock, range(10), errors=0)
    assert not core.flag_turned_on(service="shop", flag="x", at=T0 + timedelta(seconds=10))  # ok: nothing to re-arm
    core, clock, first = firing()
    assert not core.flag_turned_on(service="shop", flag="x", at=first.time - timedelta(seconds=1))  # before it fired
    at = T0 + timedelta(seconds=20.5)
    assert core.flag_turned_on(service="shop", flag="x", at=at)
    assert not core.flag_turned_on(service="shop", flag="x", at=at)  # the same change again (a replay)


def test_only_a_new_feature_going_from_off_to_on_counts_as_turned_on() -> None:
    def change(before: dict | None, after: dict | None) -> FlagChanged:
        return FlagChanged(time=datetime.now(UTC), flag_key="gamification", action="updated", actor="alice", version=2,
                           before=before, after=after)

    def rec(state: str, *, new: bool = True, killed: bool = False) -> dict:
        return {"definition": {"state": state}, "new": new, "killed": killed}

    assert turned_on(change(rec("DISABLED", killed=True), rec("ENABLED")))  # a person undoes recovery's kill
    assert turned_on(change(None, rec("ENABLED")))  # created on
    assert not turned_on(change(rec("ENABLED"), rec("ENABLED")))  # already on (a rollout change)
    assert not turned_on(change(rec("DISABLED"), rec("ENABLED", new=False)))  # not a new feature
    assert not turned_on(change(rec("ENABLED"), rec("DISABLED", killed=True)))  # recovery's kill
    assert not turned_on(change(rec("ENABLED"), None))  # deleted
