"""`safeguard recover`: `python -m services.recovery recover` through the front door (same request, same lines)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from cli.context import JsonOpt, front, run
from cli.errors import CliError, Exit
from cli.output import emit
from services.recovery.cli import ACTIONS, RecoveryError, describe, failed, run_recovery

__all__ = ["recover"]


def recover(service: str = typer.Option("demo", help="the protected service"),
            action: str | None = typer.Option(None, help=f"one action ({', '.join(ACTIONS)}); default: the actions "
                                                         "for the service's active triggers"),
            instance: str | None = typer.Option(None, help="the instance for restart_process / "
                                                           "restart_connection_pool"),
            reason: str = typer.Option("", help="written in the audit log"),
            as_json: bool = JsonOpt) -> None:
    """Run recovery now (the runbook's Step 3). Exits 1 when an action failed or was skipped."""
    if action is not None and action not in ACTIONS:
        raise typer.BadParameter(f"{action!r} is not one of {', '.join(ACTIONS)}", param_hint="--action")
    actions = run(lambda: _run(service=service, action=action, instance=instance, reason=reason))
    emit(actions, as_json=as_json, render=lambda con: _print(con, service, actions))
    if failed(actions):
        raise typer.Exit(int(Exit.FAILED))


def _run(**kw: Any) -> list[dict[str, Any]]:
    fd = front()
    try:
        return run_recovery(url=fd.config.front_url, token=fd.token(), **kw)
    except RecoveryError as exc:
        raise CliError(f"recover: {exc}", code=Exit.UNREACHABLE if exc.unreachable else Exit.FAILED) from None


def _print(con: Console, service: str, actions: list[dict[str, Any]]) -> None:
    if not actions:
        con.print(f"{escape(service)}: no active trigger, nothing to do (name one with --action)")
    for a in actions:
        con.print(escape(describe(a)))
