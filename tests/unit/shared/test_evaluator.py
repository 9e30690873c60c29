"""The shared evaluator: flagd semantics (fractional hashing equal to flagd-core), kill policy, rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import fractional as flagd_fractional

from shared.flags.evaluator import CODE_DEFAULT, FlagSpec, compile_flag, evaluate
from shared.flags.jsonlogic import LogicError, compile_rule, fractional

json_scalars = st.one_of(st.text(max_size=30), st.integers(-2**40, 2**40), st.booleans(), st.none(),
                         st.floats(allow_nan=False, allow_infinity=False))
bucket_values = st.one_of(json_scalars, st.lists(st.text(max_size=20), max_size=4),
                          st.lists(json_scalars, max_size=3), st.dictionaries(st.text(max_size=5), json_scalars,
                                                                              max_size=3))
weights = st.lists(st.tuples(st.text(min_size=1, max_size=5), st.one_of(st.integers(-5, 200), st.booleans())),
                   min_size=0, max_size=5)


@settings(max_examples=400, deadline=None)
@given(value=bucket_values, ws=weights, key=st.text(max_size=10), tk=st.one_of(st.text(max_size=20), st.none(),
                                                                               st.integers()))
def test_fractional_equals_flagd_core(value: Any, ws: list[tuple[str, Any]], key: str, tk: Any) -> None:
    data = {"$flagd": {"flagKey": key}, "targetingKey": tk}
    args = [list(w) for w in ws]
    assert fractional(data, value, *args) == flagd_fractional(data, value, *args)
    assert fractional(data, *args) == flagd_fractional(data, *args)  # shorthand: [flagKey, targetingKey]


def _flag(definition: dict[str, Any], off: str | None = None) -> Any:
    return compile_flag(FlagSpec("f", definition, off))


def test_disabled_boolean_serves_false_not_the_code_default() -> None:
    r = evaluate(_flag({"state": "DISABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}))
    assert (r.value, r.variant, r.reason) == (False, "off", "DISABLED")


def test_disabled_string_with_off_variant_and_without() -> None:
    d = {"state": "DISABLED", "variants": {"a": "x", "b": "y"}, "defaultVariant": "a"}
    assert evaluate(_flag(d, off="b")).value == "y"
    r = evaluate(_flag(d))
    assert r.value is CODE_DEFAULT and r.reason == "DISABLED"  # imported from flagd: flagd's answer


def test_unknown_operator_is_parse_error_at_evaluation_and_refused_at_compile() -> None:
    with pytest.raises(LogicError):
        compile_rule({"nope": [1]})
    r = evaluate(_flag({"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"nope": []}}))
    assert r.error_code == "PARSE_ERROR" and r.value is CODE_DEFAULT


def test_targeting_to_missing_variant_is_general() -> None:
    r = evaluate(_flag({"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a",
                        "targeting": {"if": [True, "zzz", "a"]}}))
    assert r.error_code == "GENERAL"


def test_targeting_null_gives_default_variant_and_no_default_gives_code_default() -> None:
    d = {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "targeting": {"if": [False, "a", None]}}
    assert evaluate(_flag({**d, "defaultVariant": "b"})).value == 2
    r = evaluate(_flag(d))
    assert r.value is CODE_DEFAULT and r.reason == "DEFAULT" and r.error_code is None


def test_lazy_operators_and_var_paths() -> None:
    rule = compile_rule({"and": [{"in": [{"var": "user.plan"}, ["pro", "team"]]},
                                 {"some": [{"var": "roles"}, {"==": [{"var": ""}, "admin"]}]}]})
    assert rule({"user": {"plan": "pro"}, "roles": ["x", "admin"]}) is True
    assert rule({"user": {"plan": "free"}, "roles": ["admin"]}) is False
    assert compile_rule({"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]})(
        {"xs": [1, 2, 3]}) == 6
    assert compile_rule({"var": ["missing", "dflt"]})({}) == "dflt"
    assert compile_rule({"var": "a.1"})({"a": ["x", "y"]}) == "y"
