"""Command line: no arguments runs the service; `recover` asks the running service to act now."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main"]

_STACK_TOKEN = Path(__file__).resolve().parents[2] / ".stack" / "admin-token"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.recovery",
                                     description="Safeguard recovery: without a command, run the service.")
    sub = parser.add_subparsers(dest="command")
    rec = sub.add_parser("recover", help="run recovery now (the runbook's Step 3: auto recovery)")
    rec.add_argument("--service", default="demo", help="the protected service (default: demo)")
    rec.add_argument("--action", choices=["disable_new_features", "open_circuit_breaker", "restart_process",
                                          "restart_connection_pool"],
                     help="one action; default: the actions for the service's active triggers")
    rec.add_argument("--instance", help="the instance for restart_process / restart_connection_pool")
    rec.add_argument("--reason", default="", help="written in the audit log")
    rec.add_argument("--url", default=None, help="the recovery service (default: http://127.0.0.1:$RECOVERY_PORT)")
    args = parser.parse_args(argv)
    if args.command == "recover":
        return recover(args)
    return serve()


def serve() -> int:
    from services.recovery.app import create_app
    from services.recovery.policy import PolicyError
    from services.recovery.settings import RecoverySettings
    from shared.http import serve as run

    settings = RecoverySettings()
    try:
        app = create_app(settings)
    except PolicyError as exc:
        print(f"recovery: bad policy: {exc}", file=sys.stderr)
        return 2
    run(app, host=settings.host, port=settings.port)
    return 0


def _token() -> str | None:
    token = os.environ.get("SAFEGUARD_ADMIN_TOKEN")
    if token:
        return token
    return _STACK_TOKEN.read_text().strip() if _STACK_TOKEN.is_file() else None


def recover(args: argparse.Namespace) -> int:
    import httpx

    url = args.url or f"http://127.0.0.1:{os.environ.get('RECOVERY_PORT', '8004')}"
    token = _token()
    if token is None:
        print("recover: no admin token (set SAFEGUARD_ADMIN_TOKEN or run inside the stack's checkout)",
              file=sys.stderr)
        return 2
    body = {"service": args.service, "action": args.action, "instance": args.instance,
            "reason": args.reason or "runbook step 3: auto recovery"}
    try:
        resp = httpx.post(url.rstrip("/") + "/api/recovery/run", json=body, timeout=30.0,
                          headers={"Authorization": f"Bearer {token}", "X-Safeguard-Actor": "cli"})
    except httpx.HTTPError as exc:
        print(f"recover: recovery service at {url} does not answer ({exc})", file=sys.stderr)
        return 1
    if resp.status_code != 200:
        print(f"recover: HTTP {resp.status_code}: {resp.text[:500]}", file=sys.stderr)
        return 1
    actions = resp.json()
    if not actions:
        print(f"{args.service}: no active trigger, nothing to do (name one with --action)")
    for a in actions:
        print(f"{a['service']}: {a['action']} [{a['status']}] {a['detail']}"
              + (f" (trigger {a['trigger']}, episode {a['episode_id']})" if a.get("trigger") else ""))
    failed = any(a["status"] in ("failed", "skipped") for a in actions)
    return 1 if failed else 0
