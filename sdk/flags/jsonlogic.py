"""JsonLogic compiled to closures, with flagd's custom operators.

Semantics are those of `json_logic` (the interpreter openfeature-flagd-core uses) and of
flagd-core's `fractional`, `sem_ver`, `starts_with`, `ends_with`: we call their operator
functions, but walk the rule once at compile time instead of on every evaluation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from json_logic.builtins import BUILTINS, not_, op_var, to_bool
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import ends_with, fractional, sem_ver, starts_with

__all__ = ["LogicError", "Rule", "compile_rule", "resolve_refs"]


class _QuietOperators(logging.Filter):
    """flagd-core's operators log every bad input (one line per evaluation, with a traceback for sem_ver);
    for us a bad input is an answer (null -> default variant), not an event worth a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.endswith("custom_ops.py")


logging.getLogger("openfeature.contrib").addFilter(_QuietOperators())

Rule = Callable[[dict[str, Any]], Any]
OPERATORS: dict[str, Callable[..., Any]] = {
    **BUILTINS, "fractional": fractional, "starts_with": starts_with, "ends_with": ends_with, "sem_ver": sem_ver,
}
_LAZY = {"if", "?:", "and", "or", "filter", "map", "reduce", "all", "some", "none"}


class LogicError(ValueError):
    """A rule that cannot run: unknown operator or `$ref` to an unknown evaluator (flagd: PARSE_ERROR)."""


def resolve_refs(node: Any, evaluators: Mapping[str, Any]) -> Any:
    """Replace every `{"$ref": name}` by its evaluator (flagd's `$evaluators`); unknown names stay."""
    if isinstance(node, list):
        return [resolve_refs(n, evaluators) for n in node]
    if isinstance(node, dict):
        if len(node) == 1 and "$ref" in node and isinstance(node["$ref"], str) and node["$ref"] in evaluators:
            return resolve_refs(evaluators[node["$ref"]], evaluators)
        return {k: resolve_refs(v, evaluators) for k, v in node.items()}
    return node


def compile_rule(logic: Any) -> Rule:
    """Compile once; the result is a plain function of the data. Raises LogicError on unknown operators."""
    if isinstance(logic, list):
        items = [compile_rule(n) for n in logic]
        return lambda d: [f(d) for f in items]
    if not isinstance(logic, dict) or len(logic) != 1:
        return lambda d: logic
    op, raw = next(iter(logic.items()))
    args = raw if isinstance(raw, list) else [raw]
    if op == "$ref":
        raise LogicError(f"$ref to an unknown evaluator: {raw!r}")
    if op in _LAZY:
        return _lazy(op, [compile_rule(a) for a in args])
    if op == "var" and args and not isinstance(args[0], (dict, list)) and all(
            not isinstance(a, (dict, list)) for a in args):
        return _var(args)
    fn = OPERATORS.get(op)
    if fn is None:
        raise LogicError(f"unknown JsonLogic operator {op!r}")
    compiled = [compile_rule(a) for a in args]
    if op == "var":
        return lambda d: fn(d, *[c(d) for c in compiled])
    return lambda d: fn(d, *[c(d) for c in compiled])


_SIMPLE_KEY = re.compile(r"^[^.\d][^.]*$")


def _var(args: list[Any]) -> Rule:
    key = args[0]
    default = args[1] if len(args) > 1 else None
    if isinstance(key, str) and _SIMPLE_KEY.match(key) and key != "length":
        def simple(d: dict[str, Any]) -> Any:
            v = d.get(key) if isinstance(d, dict) else op_var(d, key, default)
            return default if v is None else v
        return simple
    return lambda d: op_var(d, key, default)


def _lazy(op: str, a: list[Rule]) -> Rule:  # noqa: C901 - one small closure per lazy operator
    if op in ("if", "?:"):
        def if_(d: dict[str, Any]) -> Any:
            i, last = 0, len(a) - 1
            while i < last:
                if to_bool(a[i](d)):
                    return a[i + 1](d)
                i += 2
            return a[i](d) if i < len(a) else None
        return if_
    if op == "and":
        def and_(d: dict[str, Any]) -> Any:
            cur = None
            for f in a:
                cur = f(d)
                if not_(cur):
                    return cur
            return cur
        return and_
    if op == "or":
        def or_(d: dict[str, Any]) -> Any:
            cur = None
            for f in a:
                cur = f(d)
                if to_bool(cur):
                    return cur
            return cur
        return or_
    return _iterating(op, a)


def _iterating(op: str, a: list[Rule]) -> Rule:
    def items(d: dict[str, Any]) -> list[Any] | None:
        v = a[0](d) if a else None
        return v if isinstance(v, list) else None

    if op == "map":
        return lambda d: [] if (xs := items(d)) is None else [a[1](x) if len(a) > 1 else None for x in xs]
    if op == "filter":
        return lambda d: [] if len(a) < 2 or (xs := items(d)) is None else [x for x in xs if to_bool(a[1](x))]
    if op == "all":
        return lambda d: bool(len(a) >= 2 and (xs := items(d)) and all(to_bool(a[1](x)) for x in xs))
    if op == "some":
        return lambda d: bool(len(a) >= 2 and (xs := items(d)) is not None and any(to_bool(a[1](x)) for x in xs))
    if op == "none":
        return lambda d: len(a) < 2 or (xs := items(d)) is None or not any(to_bool(a[1](x)) for x in xs)

    def reduce_(d: dict[str, Any]) -> Any:
        init = a[2](d) if len(a) > 2 else None
        xs = items(d)
        if xs is None:
            return init
        ctx: dict[str, Any] = {"accumulator": init}
        for x in xs:
            ctx["current"] = x
            ctx["accumulator"] = a[1](ctx) if len(a) > 1 else None
        return ctx["accumulator"]
    return reduce_
