from services.sla.detection import TriggerState, step
from services.sla.policy import TriggerRule

RULE = TriggerRule(threshold=0.05, window=5, min_samples=20, hold_fire=2, hold_clear=5)


def run(values: list[tuple[float, float | None, int]], state: TriggerState | None = None, rule: TriggerRule = RULE):
    state = state or TriggerState()
    transitions = []
    for now, value, samples in values:
        state, t = step(state, rule=rule, now=now, value=value, samples=samples, service="shop", trigger="error_rate_high")
        if t:
            transitions.append((now, t))
    return state, transitions


def test_fires_once_after_hold_and_clears_once_after_hold() -> None:
    series = [(float(t), 0.01, 100) for t in range(0, 5)] + [(float(t), 0.2, 100) for t in range(5, 20)]
    series += [(float(t), 0.0, 100) for t in range(20, 40)]
    state, transitions = run(series)
    assert transitions == [(7.0, "fired"), (25.0, "cleared")]
    assert state.phase == "ok" and state.episode_id == "shop/error_rate_high/5000" and state.fired_at == 7.0
    assert state.first_bad_at == 5.0 and state.peak == 0.2


def test_a_blip_shorter_than_the_hold_does_not_fire() -> None:
    _, transitions = run([(0.0, 0.2, 100), (1.0, 0.2, 100), (2.0, 0.0, 100), (3.0, 0.2, 100), (4.0, 0.01, 100)])
    assert transitions == []


def test_too_few_samples_change_nothing() -> None:
    state, transitions = run([(float(t), 0.5, 2) for t in range(10)])  # 1 of 2 failed: no episode
    assert transitions == [] and state.phase == "ok"
    firing, _ = run([(0.0, 0.2, 100), (2.0, 0.2, 100)])
    state, transitions = run([(3.0, 1.0, 1), (30.0, 1.0, 1)], state=firing)  # a failing trickle does not clear it
    assert transitions == [] and state.phase == "firing"


def test_a_firing_trigger_without_data_clears_after_the_clear_hold() -> None:
    firing, _ = run([(0.0, 0.2, 100), (2.0, 0.2, 100)])
    state, transitions = run([(3.0, None, 0), (7.0, 0.0, 1), (8.0, None, 0)], state=firing)  # silence, a clean trickle
    assert transitions == [(8.0, "cleared")]  # no data from 3.0, held 5 s
    assert state.phase == "ok" and state.no_data and state.episode_id == firing.episode_id


def test_no_data_ends_a_pending_phase_without_an_episode() -> None:
    state, transitions = run([(0.0, 0.2, 100), (1.0, None, 0), (5.0, 0.2, 100)])
    assert transitions == [] and state.phase == "pending" and state.first_bad_at == 5.0


def test_data_back_during_a_no_data_hold_decides_as_usual() -> None:
    firing, _ = run([(0.0, 0.2, 100), (2.0, 0.2, 100)])
    state, transitions = run([(3.0, None, 0), (5.0, 0.3, 100), (6.0, 0.0, 100), (11.0, 0.0, 100)], state=firing)
    assert transitions == [(11.0, "cleared")] and not state.no_data  # bad at 5.0: same episode, hold restarts at 6.0


def test_relapse_during_clear_hold_stays_in_the_same_episode() -> None:
    firing, t1 = run([(0.0, 0.2, 100), (2.0, 0.2, 100)])
    state, t2 = run([(3.0, 0.0, 100), (5.0, 0.3, 100), (6.0, 0.0, 100), (10.0, 0.0, 100), (11.0, 0.0, 100)], state=firing)
    assert t1 == [(2.0, "fired")]
    assert t2 == [(11.0, "cleared")]  # hold restarted at 6.0; no second fired
    assert state.episode_id == firing.episode_id and state.peak == 0.3


def test_clear_threshold_adds_value_hysteresis() -> None:
    rule = TriggerRule(threshold=0.05, clear_threshold=0.02, window=5, min_samples=1, hold_fire=0, hold_clear=0)
    state, transitions = run([(0.0, 0.06, 10), (1.0, 0.04, 10), (2.0, 0.03, 10), (3.0, 0.02, 10)], rule=rule)
    assert transitions == [(0.0, "fired"), (3.0, "cleared")]


def test_state_round_trips_through_a_dict() -> None:
    state, _ = run([(0.0, 0.2, 100), (1.0, 0.2, 100)])
    assert state.phase == "pending"
    assert TriggerState.from_dict(state.to_dict()) == state
    resumed, transitions = run([(2.0, 0.2, 100)], state=TriggerState.from_dict(state.to_dict()))
    assert transitions == [(2.0, "fired")] and resumed.first_bad_at == 0.0
