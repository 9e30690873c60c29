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
import cbor2
import mmh3
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import (
    MAX_WEIGHT_SUM, ends_with, normalize_numbers, sem_ver, starts_with,
)

__all__ = ["LogicError", "Rule", "compile_rule", "reads_only_context", "resolve_refs", "check_size", "MAX_DEPTH", "MAX_NODES"]


class _QuietOperators(logging.Filter):
    """flagd-core's operators log every bad input (one line per evaluation, with a traceback for sem_ver);
    for us a bad input is an answer (null -> default variant), not an event worth a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.endswith("custom_ops.py")


logging.getLogger("openfeature.contrib").addFilter(_QuietOperators())

Rule = Callable[[dict[str, Any]], Any]


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes((major << 5 | n,))
    if n < 0x100:
        return bytes((major << 5 | 24, n))
    if n < 0x10000:
        return bytes((major << 5 | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((major << 5 | 26,)) + n.to_bytes(4, "big")
    return bytes((major << 5 | 27,)) + n.to_bytes(8, "big")


def _cbor(value: Any) -> bytes:
    """Canonical CBOR as flagd hashes it. Strings and lists of strings (the usual bucketing values) by
    hand, the rest with cbor2 exactly as flagd-core does."""
    if type(value) is str:
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if type(value) is list and all(type(v) is str for v in value):
        return _head(4, len(value)) + b"".join(_cbor(v) for v in value)
    return cbor2.dumps(normalize_numbers(value), canonical=True)


def fractional(data: dict[str, Any], *args: Any) -> Any:
    """flagd's fractional (v3): bucket = (murmur3_x86_32(canonical CBOR(value)) * sum(weights)) >> 32.
    Same answers as flagd-core's operator (a test checks it on random inputs), with a faster hash input."""
    if not args:
        return None
    if isinstance(args[0], (list, tuple)):
        tk = data.get("targetingKey")
        if not isinstance(tk, str) or not tk:
            return None
        bucket_by: Any = [data.get("$flagd", {}).get("flagKey", ""), tk]
    else:
        bucket_by, args = args[0], args[1:]
        if bucket_by is None:
            return None
    try:
        digest = mmh3.hash(_cbor(bucket_by), signed=False)
    except Exception:  # noqa: BLE001 - not encodable (flagd-core: logged, null)
        return None
    variants, total = [], 0
    for arg in args:
        if not isinstance(arg, (list, tuple)) or not arg or len(arg) > 2:
            return None
        weight = 1
        if len(arg) == 2:
            w = arg[1]
            if isinstance(w, bool) or not isinstance(w, int):
                return None
            weight = max(0, w)
        variants.append((arg[0], weight))
        total += weight
    if total > MAX_WEIGHT_SUM or total <= 0:
        return None
    bucket = (digest * total) >> 32
    end = 0
    for variant, weight in variants:
        end += weight
        if bucket < end:
            return variant
    return None
OPERATORS: dict[str, Callable[..., Any]] = {
    **BUILTINS, "fractional": fractional, "starts_with": starts_with, "ends_with": ends_with, "sem_ver": sem_ver,
}
_LAZY = {"if", "?:", "and", "or", "filter", "map", "reduce", "all", "some", "none"}


MAX_DEPTH = 64  # nesting of a targeting rule (after `$ref`s are resolved)
MAX_NODES = 50_000  # values in a rule, and the `$ref` expansion budget of a whole definition


class LogicError(ValueError):
    """A rule that cannot run: unknown operator, `$ref` to an unknown evaluator, a `$ref` cycle, or a rule
    past MAX_DEPTH / MAX_NODES (flagd: PARSE_ERROR)."""


def resolve_refs(node: Any, evaluators: Mapping[str, Any], *, max_depth: int = MAX_DEPTH,
                 max_nodes: int = MAX_NODES) -> Any:
    """Replace every `{"$ref": name}` by its evaluator (flagd's `$evaluators`); unknown names stay.

    Raises LogicError on a cycle, or when the result would nest deeper than `max_depth` (each `$ref`
    counts as a level) or hold more than `max_nodes` values: 20 evaluators that each use the previous
    one twice would otherwise expand to a million nodes."""
    too_many = f"the definition expands to more than {max_nodes} values ($evaluators used too often)"
    if (_expanded_size(node, evaluators, max_depth=max_depth, cap=max_nodes) or 0) > max_nodes:
        raise LogicError(too_many)
    budget = [max_nodes]

    def walk(n: Any, depth: int, path: tuple[str, ...]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise LogicError(too_many)
        if depth > max_depth:
            raise LogicError(f"the definition nests deeper than {max_depth} levels (with $ref resolved)")
        if isinstance(n, list):
            return [walk(x, depth + 1, path) for x in n]
        if not isinstance(n, dict):
            return n
        ref = n.get("$ref") if len(n) == 1 else None
        if isinstance(ref, str) and ref in evaluators:
            if ref in path:
                raise LogicError("$ref cycle: " + " -> ".join([*path[path.index(ref):], ref]))
            return walk(evaluators[ref], depth + 1, (*path, ref))
        return {k: walk(v, depth + 1, path) for k, v in n.items()}

    return walk(node, 0, ())


def _expanded_size(node: Any, evaluators: Mapping[str, Any], *, max_depth: int, cap: int) -> int | None:
    """The values `resolve_refs` would build, counted with each evaluator measured once (the walk spent `cap` steps
    before refusing a fan-out: over 1 s under load). None leaves it to the walk (a cycle, past `max_depth`)."""
    memo: dict[str, int] = {}

    def size(n: Any, depth: int, path: frozenset[str]) -> int | None:
        ref = n.get("$ref") if isinstance(n, dict) and len(n) == 1 else None
        ref = ref if isinstance(ref, str) and ref in evaluators else None
        if depth > max_depth or ref in path:
            return None
        if ref is not None:
            if ref not in memo and (inner := size(evaluators[ref], depth + 1, path | {ref})) is not None:
                memo[ref] = inner
            return 1 + memo[ref] if ref in memo else None
        total = 1
        for child in n.values() if isinstance(n, dict) else n if isinstance(n, list) else ():
            part = size(child, depth + 1, path)
            if part is None or total + part > cap:
                return None if part is None else total + part
            total += part
        return total

    return size(node, 0, frozenset())


def check_size(logic: Any, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """LogicError when `logic` nests deeper than `max_depth` or holds more than `max_nodes` values.
    Iterative, so any input is measured without recursion."""
    stack: list[tuple[Any, int]] = [(logic, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > max_nodes:
            raise LogicError(f"the rule holds more than {max_nodes} values")
        if depth > max_depth:
            raise LogicError(f"the rule nests deeper than {max_depth} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def compile_rule(logic: Any) -> Rule:
    """Compile once; the result is a plain function of the data. Raises LogicError on unknown operators
    and on rules past MAX_DEPTH / MAX_NODES (so neither compiling nor running one can exhaust the stack)."""
    check_size(logic)
    return _compile(logic)


_ENV_OPS = {"fractional", "missing", "missing_some"}  # read `$flagd` / `targetingKey` or keys named by data


def reads_only_context(logic: Any) -> bool:
    """True when the rule's only reads of the data are `var`s with literal keys other than `$flagd...` and
    `targetingKey...` (so evaluating it on the caller's context gives the answer it gives on flagd's data)."""
    stack = [logic]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if len(node) == 1:
                op, raw = next(iter(node.items()))
                if op in _ENV_OPS or op in _LAZY - {"if", "?:", "and", "or"}:
                    return False
                if op == "var":
                    key = (raw[0] if raw else "") if isinstance(raw, list) else raw
                    if not isinstance(key, str) or not key or key.split(".")[0] in ("$flagd", "targetingKey"):
                        return False
            stack.extend(node.values())
    return True


def _compile(logic: Any) -> Rule:
    if isinstance(logic, list):
        if _is_const(logic):
            return lambda d: logic
        items = [_compile(n) for n in logic]
        return lambda d: [f(d) for f in items]
    if not isinstance(logic, dict) or len(logic) != 1:
        return lambda d: logic
    op, raw = next(iter(logic.items()))
    args = raw if isinstance(raw, list) else [raw]
    if op == "$ref":
        raise LogicError(f"$ref to an unknown evaluator: {raw!r}")
    if op in _LAZY:
        return _lazy(op, [_compile(a) for a in args])
    if op == "var" and args and not isinstance(args[0], (dict, list)) and all(
            not isinstance(a, (dict, list)) for a in args):
        return _var(args)
    fn = OPERATORS.get(op)
    if fn is None:
        raise LogicError(f"unknown JsonLogic operator {op!r}")
    if op == "fractional" and (fixed := _fixed_fractional(args)) is not None:
        return fixed
    fn = _FAST.get(op, fn)
    return _call(fn, args)


def _is_const(logic: Any) -> bool:
    """No operation inside: the node evaluates to itself."""
    if isinstance(logic, list):
        return all(_is_const(n) for n in logic)
    return not (isinstance(logic, dict) and len(logic) == 1)


def _call(fn: Callable[..., Any], args: list[Any]) -> Rule:
    """`fn(data, *evaluated args)`, with constant arguments evaluated once and the usual arities unrolled."""
    if all(_is_const(a) for a in args):
        return lambda d: fn(d, *args)
    compiled = [_compile(a) for a in args]
    if len(args) == 1:
        c0 = compiled[0]
        return lambda d: fn(d, c0(d))
    if len(args) == 2:
        c0, c1 = compiled
        if _is_const(args[1]):
            v1 = args[1]
            return lambda d: fn(d, c0(d), v1)
        return lambda d: fn(d, c0(d), c1(d))
    return lambda d: fn(d, *[c(d) for c in compiled])


def _string_op(method: Callable[[str, str], bool]) -> Callable[..., Any]:
    """flagd-core's starts_with / ends_with (same answers: two strings, else null) without its log lines,
    which _QuietOperators drops anyway."""
    def op(data: Any, *args: Any) -> bool | None:
        if len(args) != 2:
            return None
        a, b = args
        return method(a, b) if isinstance(a, str) and isinstance(b, str) else None
    return op


_FAST: dict[str, Callable[..., Any]] = {"starts_with": _string_op(str.startswith), "ends_with": _string_op(str.endswith)}


def _fixed_fractional(args: list[Any]) -> Rule | None:
    """`fractional` bucketing by flag key and targeting key over constant [variant, weight] pairs (the usual
    rollout): the pairs checked once, the CBOR prefix of the flag key kept. Same answers as `fractional`;
    None (use the general one) for any other form."""
    if not args or not all(isinstance(a, list) for a in args) or not _is_const(args):
        return None
    pairs = []
    for a in args:
        if not a or len(a) > 2 or (len(a) == 2 and (isinstance(a[1], bool) or not isinstance(a[1], int))):
            return lambda d: None  # as `fractional` answers for every context
        pairs.append((a[0], 1 if len(a) == 1 else max(0, a[1])))
    total = sum(w for _, w in pairs)
    if total > MAX_WEIGHT_SUM or total <= 0:
        return lambda d: None
    prefixes: dict[str, bytes] = {}

    def rule(d: dict[str, Any]) -> Any:
        tk = d.get("targetingKey")
        if not isinstance(tk, str) or not tk:
            return None
        fk = d.get("$flagd", {}).get("flagKey", "")
        if type(fk) is not str:
            return fractional(d, *args)
        prefix = prefixes.get(fk)
        if prefix is None:
            prefix = prefixes[fk] = b"\x82" + _cbor(fk)  # CBOR array of 2, then the flag key
        bucket = (mmh3.hash(prefix + _cbor(tk), signed=False) * total) >> 32
        end = 0
        for variant, weight in pairs:
            end += weight
            if bucket < end:
                return variant
        return None
    return rule


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
    if op in ("if", "?:") and len(a) == 3:
        a0, a1, a2 = a
        return lambda d: a1(d) if to_bool(a0(d)) else a2(d)
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
