"""Pure flag decisions: defaults of a new flag, rollout stickiness, kill, update validation."""

from __future__ import annotations

import pytest

from services.flags import rules
from services.flags.models import DefinitionError, FlagCreate, FlagRecord, FlagUpdate
from shared.flags.evaluator import FlagSpec, compile_flag, evaluate


def _new(**kw: object) -> FlagRecord:
    return rules.create(None, FlagCreate.model_validate({"key": "f", **kw}))


def _on(rec: FlagRecord, user: str) -> bool:
    return evaluate(compile_flag(FlagSpec(rec.key, rec.definition, rec.off_variant)), {"targetingKey": user}).value is True


def test_new_flag_is_off_and_new() -> None:
    rec = _new()
    assert rec.new and rec.definition["state"] == "DISABLED"
    assert _on(rec, "u") is False


def test_rollout_sticky_monotonic_and_reversible() -> None:
    rec = _new()
    users = [f"u{i}" for i in range(2000)]
    sets = []
    for pct in (1, 10, 25, 50, 100):
        rec = rules.rollout(rec, "f", pct)
        sets.append({u for u in users if _on(rec, u)})
    assert all(a <= b for a, b in zip(sets, sets[1:], strict=False))
    assert sets[-1] == set(users)
    assert abs(len(sets[1]) - 200) < 60
    back = rules.rollout(rec, "f", 10)
    assert {u for u in users if _on(back, u)} == sets[1]
    zero = rules.rollout(rec, "f", 0)
    assert not any(_on(zero, u) for u in users[:100])


def test_rollout_refuses_custom_targeting_and_non_boolean_without_off() -> None:
    rec = _new(targeting={"if": [True, "on", "off"]})
    with pytest.raises(rules.Conflict):
        rules.rollout(rec, "f", 10)


def test_kill_then_enable_clears_killed() -> None:
    rec = rules.set_enabled(_new(state="ENABLED"), "f", enabled=False, kill=True)
    assert rec.killed and _on(rec, "u") is False
    rec = rules.set_enabled(rec, "f", enabled=True)
    assert not rec.killed and _on(rec, "u") is True


def test_update_validates_the_result() -> None:
    rec = _new()
    with pytest.raises(DefinitionError) as err:
        rules.update(rec, "f", FlagUpdate.model_validate({"defaultVariant": "missing"}))
    assert err.value.field == "defaultVariant"
    with pytest.raises(rules.FlagNotFound):
        rules.update(None, "f", FlagUpdate())


def test_non_boolean_flag_needs_an_off_variant() -> None:
    with pytest.raises(ValueError, match="offVariant"):
        FlagCreate.model_validate({"key": "s", "variants": {"a": "x", "b": "y"}, "defaultVariant": "a"})
    ok = FlagCreate.model_validate({"key": "s", "variants": {"a": "x", "b": "y"}, "defaultVariant": "a",
                                    "offVariant": "b", "state": "ENABLED"})
    assert ok.off_variant == "b"
