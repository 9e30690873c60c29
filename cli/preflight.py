"""`safeguard preflight`: the runbook's Pre-Deployment Checklist run for real (deploy/preflight.py)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.context import JsonOpt
from cli.errors import Exit
from cli.output import emit, error
from deploy.app import load_app
from deploy.preflight import Check, run_preflight

__all__ = ["preflight"]


def preflight(app: str = typer.Option("demo", help="examples/NAME/safeguard.toml, or a path to one"),
              version: str | None = typer.Option(None, help="the release to deploy (its flags are the new ones); "
                                                            "default: every release's flags that exist"),
              target: str | None = typer.Option(None, help="the instance to probe, e.g. the idle colour "
                                                           "http://127.0.0.1:8102 (default: the app's url)"),
              backup: bool = typer.Option(False, "--backup", help="take a verified backup first"),
              as_json: bool = JsonOpt) -> None:
    """Run the Pre-Deployment Checklist: pass / fail / why per line. Exit 0 only when every line passes
    (1 a line failed, 2 bad arguments, 3 the front door does not answer)."""
    try:
        spec = load_app(app)
        checks = asyncio.run(run_preflight(spec=spec, version=version, target=target, take_backup=backup))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        error(f"preflight: {exc}")
        raise typer.Exit(int(Exit.USAGE)) from None
    ok = all(c.ok for c in checks)
    data = {"ok": ok, "app": spec.name, "version": version, "target": target or spec.url,
            "checks": [c.as_dict() for c in checks]}
    emit(data, as_json=as_json, render=lambda con: _print(con, checks, title=f"preflight: {spec.name} "
                                                          f"{version or '(all releases)'} at {target or spec.url}"))
    if not ok:
        raise typer.Exit(int(Exit.UNREACHABLE if any(c.unreachable for c in checks) else Exit.FAILED))


def _print(con: Console, checks: list[Check], *, title: str) -> None:
    t = Table(title=escape(title), title_justify="left", title_style="bold")
    for name in ("line", "result", "why", "time"):
        t.add_column(name, no_wrap=name in ("line", "result"), overflow="fold")
    group = None
    for c in checks:
        if c.group != group:
            group = c.group
            t.add_row(f"[bold]{escape(group)}[/bold]", "", "", "", end_section=False)
        result = "[green]PASS[/green]" if c.ok else "[red]FAIL[/red]"
        t.add_row(f"  {escape(c.line)}", result, escape(c.why), f"{c.seconds:.2f} s")
    con.print(t)
    failed = [c for c in checks if not c.ok]
    con.print(f"{len(checks) - len(failed)}/{len(checks)} pass" + (f", {len(failed)} FAIL" if failed else ""))
