"""The evaluator's fast paths (issue 12) answer as flagd-core does: the precomputed `fractional` over constant
pairs, and a rule that reads only the context evaluated without copying it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import fractional as flagd_fractional
from openfeature.evaluation_context import EvaluationContext

from shared.flags.evaluator import FlagSpec, compile_flag, evaluate
from shared.flags.jsonlogic import compile_rule, reads_only_context

pairs = st.lists(st.one_of(st.tuples(st.text(min_size=1, max_size=5), st.one_of(st.integers(-5, 200), st.booleans())),
                           st.tuples(st.text(min_size=1, max_size=5))), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(ws=pairs, key=st.text(max_size=10), tk=st.one_of(st.text(max_size=20), st.none(), st.integers()))
def test_compiled_fractional_over_constant_pairs_equals_flagd_core(ws: list[tuple[Any, ...]], key: str,
                                                                   tk: Any) -> None:
    args = [list(w) for w in ws]
    data = {"$flagd": {"flagKey": key}, "targetingKey": tk}
    assert compile_rule({"fractional": args})(data) == flagd_fractional(data, *args)


RULE = {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}
FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off", "targeting": RULE}


def test_reads_only_context_refuses_rules_that_read_flagd_data() -> None:
    assert reads_only_context(RULE)
    for rule in ({"var": "$flagd.flagKey"}, {"var": ["targetingKey"]}, {"var": ""}, {"var": [{"var": "k"}]},
                 {"fractional": [["a", 1]]}, {"missing": ["email"]}, {"map": [{"var": "xs"}, {"var": ""}]},
                 {"==": [{"var": "targetingKey.x"}, 1]}):
        assert not reads_only_context(rule), rule


@settings(max_examples=200, deadline=None)
@given(ctx=st.dictionaries(st.sampled_from(["email", "targetingKey", "$flagd", "plan"]),
                           st.one_of(st.text(max_size=15), st.sampled_from(["a@example.com", "b@other.org"]),
                                     st.integers(), st.none()), max_size=4))
def test_plain_rule_on_the_context_itself_answers_as_flagd_core(ctx: dict[str, Any]) -> None:
    flag = compile_flag(FlagSpec("targeted", FLAG))
    assert flag.plain
    before = dict(ctx)
    ours = evaluate(flag, ctx)
    assert ctx == before  # the caller's context is not written
    core = FlagdCore()
    core.set_flags({"flags": {"targeted": FLAG}})
    tk = ctx.get("targetingKey")
    theirs = core.resolve_boolean_value("targeted", False, EvaluationContext(
        tk if isinstance(tk, str) else None, {k: v for k, v in ctx.items() if k != "targetingKey"}))
    assert (ours.value, ours.variant, ours.reason) == (theirs.value, theirs.variant, str(theirs.reason.value))
