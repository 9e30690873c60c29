"""Pure decisions about one flag: create, update, enable/kill, rollout. No I/O."""

from __future__ import annotations

from typing import Any

from services.flags.models import DefinitionError, FlagCreate, FlagRecord, FlagUpdate, validate_definition
from shared.flags.evaluator import off_variant_of

__all__ = [
    "FlagNotFound", "Conflict", "create", "update", "set_enabled", "rollout", "delete", "ROLLOUT_SCALE",
    "rollout_targeting",
]

ROLLOUT_SCALE = 10_000  # fractional weights out of 10 000: 0.01 % steps, same buckets at every percent


class FlagNotFound(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"flag {key!r} not found")
        self.key = key


class Conflict(ValueError):
    """The change is valid in form but not for this flag's current state."""


def create(current: FlagRecord | None, body: FlagCreate) -> FlagRecord:
    if current is not None:
        raise Conflict(f"flag {body.key!r} already exists")
    return FlagRecord(key=body.key, definition=body.definition(), off_variant=body.off_variant, new=body.new,
                      killed=False, description=body.description)


def update(current: FlagRecord | None, key: str, body: FlagUpdate) -> FlagRecord:
    rec = _need(current, key)
    d = dict(rec.definition)
    given = body.model_fields_set
    if "state" in given and body.state is not None:
        d["state"] = body.state
    if "variants" in given and body.variants is not None:
        d["variants"] = body.variants
    if "default_variant" in given:
        d["defaultVariant"] = body.default_variant
    if "targeting" in given:
        d.pop("targeting", None)
        if body.targeting:
            d["targeting"] = body.targeting
    if "metadata" in given:
        d.pop("metadata", None)
        if body.metadata:
            d["metadata"] = body.metadata
    off = body.off_variant if "off_variant" in given else rec.off_variant
    validate_definition(d, off)
    return rec.model_copy(update={
        "definition": d, "off_variant": off,
        "new": body.new if body.new is not None else rec.new,
        "description": body.description if body.description is not None else rec.description,
        "killed": rec.killed and d["state"] == "DISABLED",
        "rollout_percent": rec.rollout_percent if "targeting" not in given else None,
    })


def set_enabled(current: FlagRecord | None, key: str, *, enabled: bool, kill: bool = False) -> FlagRecord:
    """Turn a flag on (ENABLED) or off (DISABLED: it serves its off variant). `kill` marks an emergency stop."""
    rec = _need(current, key)
    if not enabled and off_variant_of(rec.definition, rec.off_variant) is None:
        # an imported non-boolean flag without an off variant would fall back to code defaults
        raise DefinitionError("offVariant", "set an off variant before turning this flag off")
    d = {**rec.definition, "state": "ENABLED" if enabled else "DISABLED"}
    return rec.model_copy(update={"definition": d, "killed": (not enabled) and (kill or rec.killed)})


def rollout_targeting(on: str, off: str, percent: float) -> dict[str, Any]:
    w = round(percent * ROLLOUT_SCALE / 100)
    return {"fractional": [[on, w], [off, ROLLOUT_SCALE - w]]}


def rollout(current: FlagRecord | None, key: str, percent: float) -> FlagRecord:
    """Serve the on variant to `percent` % of targeting keys, sticky: bucket = murmur3(flagKey, targetingKey),
    and the on range always starts at 0, so a key that is in at 10 % is in at 50 % and 100 %."""
    rec = _need(current, key)
    d = dict(rec.definition)
    off = off_variant_of(d, rec.off_variant)
    ons = [k for k, v in d["variants"].items() if v is True] or [k for k in d["variants"] if k != off]
    if off is None or not ons:
        raise Conflict("a rollout needs an on and an off variant (a boolean flag, or set offVariant)")
    if d.get("targeting") and rec.rollout_percent is None:
        raise Conflict("this flag has its own targeting; clear it (PATCH targeting: null) before a rollout")
    on = "on" if "on" in ons else ons[0]
    d["state"] = "ENABLED"
    if percent >= 100:
        d.pop("targeting", None)
        d["defaultVariant"] = on
    elif percent <= 0:
        d.pop("targeting", None)
        d["defaultVariant"] = off
    else:
        d["targeting"] = rollout_targeting(on, off, percent)
        d["defaultVariant"] = off  # no targeting key: not in the rollout
    return rec.model_copy(update={"definition": d, "rollout_percent": percent, "killed": False})


def delete(current: FlagRecord | None, key: str) -> None:
    _need(current, key)


def _need(current: FlagRecord | None, key: str) -> FlagRecord:
    if current is None:
        raise FlagNotFound(key)
    return current
