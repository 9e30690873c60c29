"""Features recovery turned off stay off until a person turns them on (issue 14): the marks the flags list,
a flag's page and the Recovery page show. The list comes from recovery (`GET /api/recovery/kept-off`, which
asks the flags service whether each flag's newest change is still recovery's kill); a flag's page reads it
from the flag's own audit log."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

from services.console.ops_api import UpstreamError, ops_api

__all__ = ["kept_off", "kept_off_by_audit", "effect_view", "RECOVERY_ACTOR"]

log = logging.getLogger(__name__)
RECOVERY_ACTOR = "admin:recovery"  # how the flags service audits recovery's kill


async def kept_off(request: Request) -> dict[str, dict[str, Any]] | None:
    """flag -> recovery's kill of it, for the flags recovery keeps off now; None when recovery did not answer
    (the page shows the rest, without marks)."""
    try:
        found = await ops_api(request, "recovery").call("GET", "/api/recovery/kept-off")
    except UpstreamError as exc:
        log.warning("kept-off flags not read from recovery: %s", exc.message)
        return None
    return {k["flag"]: k for k in found or [] if k.get("kept_off")}


def kept_off_by_audit(audit: list[dict[str, Any]]) -> str:
    """The mark for a flag's page: its newest change is recovery's kill (audit newest first), else ""."""
    if not audit or audit[0].get("actor") != RECOVERY_ACTOR or audit[0].get("action") != "killed":
        return ""
    at = str(audit[0].get("at", ""))[11:16]
    why = audit[0].get("reason") or ""
    return (f"turned off by recovery at {at} UTC{': ' + why if why else ''}: stays off until a person turns it "
            "on")


def effect_view(a: dict[str, Any]) -> tuple[str, str]:
    """(text, css class) for an action's verified effect on the Recovery page."""
    outcome = a.get("verify_outcome")
    if outcome == "verified":
        return f"verified after {a.get('verify_seconds') or 0:.1f}s: {a.get('effect')}", "ok"
    if outcome == "not_seen":
        return str(a.get("effect") or "no effect seen"), "bad"
    return ("checking" if a.get("status") == "started" else "-"), "muted"
