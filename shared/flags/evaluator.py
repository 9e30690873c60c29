"""Flag evaluation with flagd's semantics and Safeguard's kill policy. No I/O: the service and the SDK share it.

A `FlagSpec` is a flagd flag definition (state, variants, defaultVariant, targeting, metadata)
plus an optional `offVariant`. Differences from flagd, on purpose:
- A DISABLED (killed / turned-off) flag serves its off variant with reason DISABLED, so an
  operator who turns a feature off sees it off everywhere, whatever default the code passed.
  The off variant is `offVariant`, else (for a boolean flag) the variant whose value is false.
  Only a DISABLED flag that has neither (a non-boolean flag imported from flagd) keeps flagd's
  answer: the caller's default.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from shared.flags.jsonlogic import LogicError, Rule, compile_rule, reads_only_context

__all__ = [
    "FlagSpec", "CompiledFlag", "Resolution", "compile_flag", "evaluate", "off_variant_of", "CODE_DEFAULT",
    "Reason", "ErrorCode",
]

Reason = Literal["STATIC", "TARGETING_MATCH", "DEFAULT", "DISABLED", "ERROR", "SPLIT", "UNKNOWN"]
ErrorCode = Literal["FLAG_NOT_FOUND", "PARSE_ERROR", "TYPE_MISMATCH", "GENERAL", "INVALID_CONTEXT"]


class _CodeDefault:
    """The value of a resolution that defers to the caller's default (flagd: no `value` in OFREP)."""

    def __repr__(self) -> str:
        return "CODE_DEFAULT"


CODE_DEFAULT: Final = _CodeDefault()


@dataclass(frozen=True, slots=True)
class Resolution:
    value: Any
    variant: str | None
    reason: Reason
    error_code: ErrorCode | None = None
    error_message: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_code_default(self) -> bool:
        return self.value is CODE_DEFAULT


@dataclass(frozen=True, slots=True)
class FlagSpec:
    key: str
    definition: Mapping[str, Any]
    off_variant: str | None = None


@dataclass(frozen=True, slots=True)
class CompiledFlag:
    key: str
    enabled: bool
    variants: Mapping[str, Any]
    default_variant: str | None
    off_variant: str | None
    rule: Rule | None
    broken: str | None
    metadata: Mapping[str, Any]
    static: Resolution | None
    plain: bool = False  # the rule reads neither `$flagd` nor `targetingKey`: it may see the context itself
    matches: Mapping[str, Resolution] = field(default_factory=dict)  # variant -> its TARGETING_MATCH answer
    fallback: Resolution | None = None  # the answer when the rule returns null


def _variant_key(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def off_variant_of(definition: Mapping[str, Any], explicit: str | None = None) -> str | None:
    """The variant a killed flag serves: `explicit`, else a boolean flag's false variant."""
    variants = definition.get("variants") or {}
    if explicit is not None:
        return explicit if explicit in variants else None
    values = list(variants.values())
    if values and all(isinstance(v, bool) for v in values):
        falses = [k for k, v in variants.items() if v is False]
        return "off" if "off" in falses else (falses[0] if falses else None)
    return None


def compile_flag(spec: FlagSpec) -> CompiledFlag:
    """Compile a definition once. A rule that cannot compile is kept as `broken` (PARSE_ERROR on evaluation)."""
    d = spec.definition
    variants: Mapping[str, Any] = d.get("variants") or {}
    targeting = d.get("targeting")
    rule: Rule | None = None
    broken: str | None = None
    if isinstance(targeting, dict) and targeting:
        try:
            rule = compile_rule(targeting)
        except LogicError as exc:
            broken = str(exc)
    elif targeting not in (None, {}):
        broken = f"targeting must be an object, got {type(targeting).__name__}"
    metadata = d.get("metadata") or {}
    flag = CompiledFlag(
        key=spec.key, enabled=d.get("state", "ENABLED") == "ENABLED", variants=variants,
        default_variant=_variant_key(d.get("defaultVariant")),
        off_variant=off_variant_of(d, spec.off_variant), rule=rule, broken=broken, metadata=metadata, static=None,
        plain=rule is not None and reads_only_context(targeting))
    if rule is not None:
        object.__setattr__(flag, "matches", {
            k: Resolution(v, k, "TARGETING_MATCH", metadata=metadata) for k, v in variants.items()})
        object.__setattr__(flag, "fallback", _default(flag, "DEFAULT"))
    if flag.enabled and rule is None and broken is None:
        object.__setattr__(flag, "static", _default(flag, "STATIC"))
    elif not flag.enabled:
        object.__setattr__(flag, "static", _disabled(flag))
    return flag


def _default(flag: CompiledFlag, reason: Reason) -> Resolution:
    v = flag.default_variant
    if v is None:
        return Resolution(CODE_DEFAULT, None, "DEFAULT", metadata=flag.metadata)
    if v not in flag.variants:
        return _error(flag, "GENERAL", f"default variant {v!r} is not among the variants")
    return Resolution(flag.variants[v], v, reason, metadata=flag.metadata)


def _disabled(flag: CompiledFlag) -> Resolution:
    off = flag.off_variant
    if off is not None:
        return Resolution(flag.variants[off], off, "DISABLED", metadata=flag.metadata)
    return Resolution(CODE_DEFAULT, None, "DISABLED", metadata=flag.metadata)


def _error(flag: CompiledFlag, code: ErrorCode, message: str) -> Resolution:
    return Resolution(CODE_DEFAULT, None, "ERROR", code, message, flag.metadata)


def evaluate(flag: CompiledFlag, context: Mapping[str, Any] | None = None, *, now: float | None = None) -> Resolution:
    """Resolve `flag` for `context` (an OpenFeature evaluation context as a dict, `targetingKey` included)."""
    if flag.static is not None:
        return flag.static
    if flag.broken is not None:
        return _error(flag, "PARSE_ERROR", flag.broken)
    assert flag.rule is not None
    if flag.plain and type(context) is dict:
        data = context  # the rule reads other keys only and never writes: no copy needed
    else:
        data = dict(context) if context else {}
        data["$flagd"] = {"flagKey": flag.key, "timestamp": int(now if now is not None else time.time())}
        data["targetingKey"] = context.get("targetingKey") if context else None
    try:
        result = flag.rule(data)
    except Exception as exc:  # noqa: BLE001 - a rule that fails on this context is GENERAL, as in flagd
        return _error(flag, "GENERAL", f"targeting failed: {type(exc).__name__}: {exc}")
    if result is None:
        return flag.fallback or _default(flag, "DEFAULT")
    variant = "true" if result is True else "false" if result is False else str(result)
    match = flag.matches.get(variant)
    if match is None:
        return _error(flag, "GENERAL", f"targeting returned variant {variant!r}, which is not among the variants")
    return match
