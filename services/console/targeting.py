"""flagd targeting (JsonLogic) as one short line a person reads at a glance.

    {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}
        -> 'email ends with "@example.com" -> on; otherwise off'
    {"fractional": [["on", 1000], ["off", 9000]]}  -> "10 % on, 90 % off"

Anything not recognised is shown as compact JSON, so nothing is hidden; the flag's page also shows the rule."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["describe", "describe_rule"]

_COMPARE = {"==": "=", "===": "=", "!=": "≠", "!==": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}
_WORDS = {"starts_with": "starts with", "ends_with": "ends with"}
_VARS = {"$flagd.flagKey": "flag key", "$flagd.timestamp": "time", "targetingKey": "user key"}


def describe(targeting: dict[str, Any] | None, *, limit: int = 160) -> str:
    """The rule as one line (cut at `limit` characters); "" when there is none (the default variant is served)."""
    if not targeting:
        return ""
    text = describe_rule(targeting)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def describe_rule(rule: Any) -> str:
    """A rule evaluated to a variant: what it serves, and when."""
    if isinstance(rule, str):
        return rule
    if rule is None:
        return "the default variant"
    if isinstance(rule, dict) and len(rule) == 1:
        op, args = next(iter(rule.items()))
        if op == "if" and isinstance(args, list) and args:
            return _if(args)
        if op == "fractional" and isinstance(args, list):
            return _fractional(args)
    return _json(rule)


def _if(args: list[Any]) -> str:
    parts = [f"{_condition(args[i])} -> {_result(args[i + 1])}" for i in range(0, len(args) - 1, 2)]
    if len(args) % 2:
        parts.append(f"otherwise {_result(args[-1])}")
    return "; ".join(parts)


def _result(value: Any) -> str:
    text = describe_rule(value)
    return f"({text})" if isinstance(value, dict) else text


def _fractional(args: list[Any]) -> str:
    by = ""
    if args and not isinstance(args[0], list):
        by, args = f"by {_operand(args[0])}: ", args[1:]
    buckets = [(str(b[0]), float(b[1]) if len(b) > 1 and isinstance(b[1], (int, float)) else 1.0)
               for b in args if isinstance(b, list) and b]
    total = sum(w for _, w in buckets)
    if not buckets or total <= 0:
        return _json({"fractional": args})
    return by + ", ".join(f"{_share(w / total)} {name}" for name, w in buckets)


def _share(ratio: float) -> str:
    pct = ratio * 100
    return f"{pct:.0f} %" if abs(pct - round(pct)) < 1e-9 else f"{pct:.2f} %".replace(".00 ", " ")


def _condition(cond: Any) -> str:
    if not isinstance(cond, dict) or len(cond) != 1:
        return _operand(cond)
    op, args = next(iter(cond.items()))
    if op == "var":
        return _operand(cond)
    args = args if isinstance(args, list) else [args]
    if op in ("and", "or"):
        return f" {op} ".join(_grouped(a) for a in args)
    if op in ("!", "not"):
        return f"not {_grouped(args[0])}" if args else _json(cond)
    if op == "!!":
        return f"{_operand(args[0])} is set" if args else _json(cond)
    if op in _COMPARE and len(args) == 2:
        return f"{_operand(args[0])} {_COMPARE[op]} {_operand(args[1])}"
    if op in _WORDS and len(args) == 2:
        return f"{_operand(args[0])} {_WORDS[op]} {_operand(args[1])}"
    if op == "in" and len(args) == 2:
        if isinstance(args[1], list):
            return f"{_operand(args[0])} in {', '.join(_operand(a) for a in args[1])}"
        return f"{_operand(args[1])} contains {_operand(args[0])}"
    if op == "sem_ver" and len(args) == 3:
        return f"{_operand(args[0])} {args[1]} {_operand(args[2])} (semver)"
    return _json(cond)


def _grouped(cond: Any) -> str:
    text = _condition(cond)
    return f"({text})" if isinstance(cond, dict) and next(iter(cond), "") in ("and", "or") else text


def _operand(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1 and "var" in value:
        name = value["var"][0] if isinstance(value["var"], list) and value["var"] else value["var"]
        return _VARS.get(str(name), str(name))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and len(value) == 1:
        return _condition(value)
    return _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
