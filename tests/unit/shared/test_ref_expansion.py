"""`$ref` expansion is measured before it is built (`shared.flags.jsonlogic.resolve_refs`): a definition whose
evaluators expand past the budget is refused after counting each evaluator once, not after building `max_nodes`
values (CI, 2026-12-02: an import of 20 evaluators each using the previous one twice took 1.1 s to refuse)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.flags.jsonlogic import LogicError, _expanded_size, resolve_refs


def _values(n: Any) -> int:
    if isinstance(n, dict):
        return 1 + sum(_values(v) for v in n.values())
    if isinstance(n, list):
        return 1 + sum(_values(v) for v in n)
    return 1


def _doubling(n: int) -> dict[str, Any]:
    ev: dict[str, Any] = {"e0": {"var": "x"}}
    for i in range(1, n):
        ev[f"e{i}"] = {"or": [{"$ref": f"e{i - 1}"}, {"$ref": f"e{i - 1}"}]}
    return ev


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_the_count_is_the_walk_s_budget_use(n: int) -> None:
    """The walk spends one unit per value it visits, a `$ref` included: the count matches it exactly."""
    ev, rule = _doubling(n), {"if": [{"$ref": f"e{n - 1}"}, "on", "off"]}
    built = _values(resolve_refs(rule, ev))
    refs = 2**n - 1  # the `$ref`s visited (1 in the rule, 2 in each evaluator's use): one value more each
    assert _expanded_size(rule, ev, max_depth=64, cap=10**9) == built + refs


def test_a_fan_out_is_refused_by_counting_not_building(monkeypatch: pytest.MonkeyPatch) -> None:
    ev = _doubling(20)  # 2^19 copies of e0 once resolved
    assert (_expanded_size({"$ref": "e19"}, ev, max_depth=64, cap=50_000) or 0) > 50_000
    walked = []
    monkeypatch.setattr("shared.flags.jsonlogic.LogicError.__init__", lambda self, msg: walked.append(msg))
    with pytest.raises(LogicError):
        resolve_refs({"$ref": "e19"}, ev)
    assert walked == ["the definition expands to more than 50000 values ($evaluators used too often)"]


def test_cycles_and_depth_are_left_to_the_walk() -> None:
    assert _expanded_size({"$ref": "a"}, {"a": {"$ref": "b"}, "b": {"$ref": "a"}}, max_depth=64, cap=100) is None
    with pytest.raises(LogicError, match=r"\$ref cycle: a -> b -> a"):
        resolve_refs({"$ref": "a"}, {"a": {"$ref": "b"}, "b": {"$ref": "a"}})
    chain = {f"e{i}": {"and": [{"$ref": f"e{i - 1}"}]} for i in range(1, 300)} | {"e0": True}
    assert _expanded_size({"$ref": "e299"}, chain, max_depth=64, cap=10**6) is None
    with pytest.raises(LogicError, match="nests deeper than 64"):
        resolve_refs({"$ref": "e299"}, chain)


def test_odd_refs_are_plain_values() -> None:
    rule = {"and": [{"$ref": {"not": "a name"}}, {"$ref": "unknown"}, {"$ref": 3}]}
    assert _expanded_size(rule, {"a": True}, max_depth=64, cap=100) == _values(resolve_refs(rule, {"a": True}))
