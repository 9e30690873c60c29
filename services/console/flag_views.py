"""The flags service's answers shaped for the flags pages: state in words, variants and targeting in one
line each, and an audit entry's before / after as the fields that changed."""

from __future__ import annotations

import json
from typing import Any

from services.console.targeting import describe

__all__ = ["flag_view", "matches", "audit_view", "changes", "state_of", "exposure_view"]


def state_of(flag: dict[str, Any]) -> tuple[str, str]:
    """(label, css class): Killed, Off, On for 10 %, On."""
    if flag.get("killed"):
        return "Killed", "bad"
    if flag.get("state") != "ENABLED":
        return "Off", "muted"
    pct = flag.get("rolloutPercent")
    return (f"On for {pct:g} %", "warn") if pct is not None else ("On", "ok")


def _value(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def flag_view(flag: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
    """`detail`: also the targeting rule as indented JSON (the flag's page)."""
    label, css = state_of(flag)
    variants = flag.get("variants") or {}
    text = ", ".join(f"{k} = {_value(v)}" for k, v in variants.items())
    return {
        "key": flag["key"], "description": flag.get("description", ""), "new": flag.get("new", False),
        "state": label, "state_class": css, "on": flag.get("state") == "ENABLED", "killed": flag.get("killed", False),
        "variants": text if len(text) <= 80 else text[:79] + "…", "default": flag.get("defaultVariant"),
        "off_variant": flag.get("offVariant"), "rollout": flag.get("rolloutPercent"),
        "targeting": describe(flag.get("targeting")),
        "targeting_json": json.dumps(flag["targeting"], indent=2, ensure_ascii=False)
        if detail and flag.get("targeting") else "",
        "version": flag.get("version"), "updated_at": flag.get("updatedAt"), "kept_off": "",
    }


def matches(flag: dict[str, Any], query: str) -> bool:
    """Search: every word of the query is in the key or the description (case-insensitive)."""
    haystack = f"{flag['key']} {flag.get('description', '')}".lower()
    return all(word in haystack for word in query.lower().split())


def _flat(record: dict[str, Any] | None) -> dict[str, Any]:
    if not record:
        return {}
    d = record.get("definition") or {}
    return {"state": d.get("state"), "killed": record.get("killed"), "rollout": record.get("rollout_percent"),
            "default variant": d.get("defaultVariant"), "variants": d.get("variants"),
            "targeting": describe(d.get("targeting")) or None, "off variant": record.get("off_variant"),
            "new": record.get("new"), "description": record.get("description") or None, "deleted": record.get("deleted_at")}


def _shown(v: Any) -> str:
    if v is None:
        return "(none)"
    return v if isinstance(v, str) else _value(v)


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(field, before, after) for each field that differs; a creation lists what was set."""
    old, new = _flat(before), _flat(after)
    return [(name, _shown(old.get(name)), _shown(new.get(name)))
            for name in dict.fromkeys([*old, *new]) if old.get(name) != new.get(name)
            and not (before is None and new.get(name) is None)]


def audit_view(entry: dict[str, Any]) -> dict[str, Any]:
    return {"id": entry["id"], "at": entry["at"][:19].replace("T", " "), "actor": entry["actor"],
            "action": entry["action"], "reason": entry["reason"], "version": entry["version"],
            "changes": changes(entry.get("before"), entry.get("after"))}


def exposure_view(exposure: dict[str, Any] | None, *, percent: float) -> dict[str, Any] | None:
    """The flags service's exposure count in words, and what the slider at `percent` would reach (N × %)."""
    if not exposure:
        return None
    users, got_in = int(exposure.get("users_last_hour", 0)), int(exposure.get("in", 0))
    if users == 0:
        text = "No user evaluated this flag in the last hour (OFREP calls and SDK reports count)."
    else:
        text = f"~{users:,} users in the last hour, ~{got_in:,} ({got_in * 100 / users:.0f} %) got it on."
    return {"users": users, "in": got_in, "text": text, "reach": reach_text(users, percent)}


def reach_text(users: int, percent: float) -> str:
    return f"at {percent:g} %: ~{round(users * percent / 100):,} of the last hour's users"
