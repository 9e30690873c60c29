"""`safeguard flags ...`: the flags API (services/flags/api.py) through the front door."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer
from rich.console import Console

from cli.context import JsonOpt, front, run
from cli.output import emit, table

__all__ = ["flags_app"]

flags_app = typer.Typer(help="List and change feature flags (every change is audited as actor `cli`).",
                        no_args_is_help=True)
ReasonOpt = typer.Option("", "--reason", help="written in the audit log")
_COLUMNS = ("key", "state", "default", "new", "rollout", "version", "updated")


def _row(f: dict[str, Any]) -> tuple[Any, ...]:
    rollout = f.get("rolloutPercent")
    return (f["key"], "killed" if f.get("killed") else f["state"], f.get("defaultVariant"), "yes" if f.get("new") else "",
            "" if rollout is None else f"{rollout:g} %", f.get("version"),
            (f.get("updatedAt") or "")[:16])


def _show(flags: list[dict[str, Any]], *, as_json: bool, title: str) -> None:
    def render(con: Console) -> None:
        con.print(table(title, _COLUMNS, (_row(f) for f in flags)))
    emit(flags if title == "flags" else flags[0], as_json=as_json, render=render)


def _change(key: str, verb: str, body: dict[str, Any], as_json: bool) -> None:
    flag = run(lambda: front().post(f"/api/flags/{quote(key, safe='')}/{verb}", body=body))
    _show([flag], as_json=as_json, title=f"{verb}: {key}")


@flags_app.command("list")
def list_flags(new: bool = typer.Option(False, "--new", help="only flags marked new"), as_json: bool = JsonOpt) -> None:
    """Every flag with its state."""
    flags = run(lambda: front().get("/api/flags" + ("?new=true" if new else ""), admin=True))
    _show(flags, as_json=as_json, title="flags")


@flags_app.command()
def enable(key: str, reason: str = ReasonOpt, as_json: bool = JsonOpt) -> None:
    """Turn a flag on (also un-kills it)."""
    _change(key, "enable", {"reason": reason}, as_json)


@flags_app.command()
def disable(key: str, reason: str = ReasonOpt, as_json: bool = JsonOpt) -> None:
    """Turn a flag off."""
    _change(key, "disable", {"reason": reason}, as_json)


@flags_app.command()
def kill(key: str, reason: str = ReasonOpt, as_json: bool = JsonOpt) -> None:
    """Kill switch: the flag serves its off variant everywhere, now."""
    _change(key, "kill", {"reason": reason}, as_json)


@flags_app.command()
def rollout(key: str, percent: float = typer.Argument(..., min=0, max=100, help="share of users served on, 0-100"),
            reason: str = ReasonOpt, as_json: bool = JsonOpt) -> None:
    """Serve the on variant to PERCENT % of targeting keys (sticky)."""
    _change(key, "rollout", {"percent": percent, "reason": reason}, as_json)


@flags_app.command("kill-new")
def kill_new(reason: str = ReasonOpt, as_json: bool = JsonOpt) -> None:
    """Kill every flag marked new (what recovery does when errors pass 5 %)."""
    out = run(lambda: front().post("/api/flags/_kill-new", body={"reason": reason}))

    def render(con: Console) -> None:
        killed = out.get("killed") or []
        con.print(f"killed {len(killed)} new flag(s): {', '.join(map(str, killed)) or '-'}")
    emit(out, as_json=as_json, render=render)
