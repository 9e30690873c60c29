"""Command line: `recover` asks the running service to act now (without arguments, __main__.py runs the service)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["ACTIONS", "RecoveryError", "describe", "failed", "main", "run_recovery"]

ACTIONS = ("disable_new_features", "open_circuit_breaker", "restart_process", "restart_connection_pool")

_STACK_TOKEN = Path(__file__).resolve().parents[2] / ".stack" / "admin-token"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.recovery",
                                     description="Safeguard recovery: without a command, run the service.")
    sub = parser.add_subparsers(dest="command")
    rec = sub.add_parser("recover", help="run recovery now (the runbook's Step 3: auto recovery)")
    rec.add_argument("--service", default="demo", help="the protected service (default: demo)")
    rec.add_argument("--action", choices=ACTIONS,
                     help="one action; default: the actions for the service's active triggers")
    rec.add_argument("--instance", help="the instance for restart_process / restart_connection_pool")
    rec.add_argument("--reason", default="", help="written in the audit log")
    rec.add_argument("--url", default=None, help="the recovery service (default: http://127.0.0.1:$RECOVERY_PORT)")
    args = parser.parse_args(argv)
    if args.command == "recover":
        return recover(args)
    parser.print_help()  # `python -m services.recovery` alone runs the service (__main__.py), not this
    return 2


def _token() -> str | None:
    token = os.environ.get("SAFEGUARD_ADMIN_TOKEN")
    if token:
        return token
    return _STACK_TOKEN.read_text().strip() if _STACK_TOKEN.is_file() else None


class RecoveryError(Exception):
    """The recovery endpoint did not answer (`unreachable`) or refused the request."""

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def run_recovery(*, url: str, token: str, service: str, action: str | None = None, instance: str | None = None,
                 reason: str = "", actor: str = "cli") -> list[dict[str, Any]]:
    """POST /api/recovery/run at `url` (the recovery service or the front door): the actions taken."""
    import httpx

    body = {"service": service, "action": action, "instance": instance,
            "reason": reason or "runbook step 3: auto recovery"}
    try:
        resp = httpx.post(url.rstrip("/") + "/api/recovery/run", json=body, timeout=30.0,
                          headers={"Authorization": f"Bearer {token}", "X-Safeguard-Actor": actor})
    except httpx.HTTPError as exc:
        raise RecoveryError(f"recovery service at {url} does not answer ({exc})", unreachable=True) from None
    if resp.status_code != 200:
        raise RecoveryError(f"HTTP {resp.status_code}: {resp.text[:500]}", unreachable=resp.status_code in (502, 503, 504))
    actions: list[dict[str, Any]] = resp.json()
    return actions


def describe(action: dict[str, Any]) -> str:
    """One line for an action taken, as `recover` prints it."""
    return (f"{action['service']}: {action['action']} [{action['status']}] {action['detail']}"
            + (f" (trigger {action['trigger']}, episode {action['episode_id']})" if action.get("trigger") else ""))


def failed(actions: list[dict[str, Any]]) -> bool:
    return any(a["status"] in ("failed", "skipped") for a in actions)


def recover(args: argparse.Namespace) -> int:
    url = args.url or f"http://127.0.0.1:{os.environ.get('RECOVERY_PORT', '8004')}"
    token = _token()
    if token is None:
        print("recover: no admin token (set SAFEGUARD_ADMIN_TOKEN or run inside the stack's checkout)",
              file=sys.stderr)
        return 2
    try:
        actions = run_recovery(url=url, token=token, service=args.service, action=args.action,
                               instance=args.instance, reason=args.reason)
    except RecoveryError as exc:
        print(f"recover: {exc}", file=sys.stderr)
        return 1
    if not actions:
        print(f"{args.service}: no active trigger, nothing to do (name one with --action)")
    for a in actions:
        print(describe(a))
    return 1 if failed(actions) else 0
