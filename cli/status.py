"""`safeguard status`: GET /api/system/status (the health service) as tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import typer
from rich.console import Console

from cli.context import JsonOpt, front, run
from cli.output import emit, styled, table

__all__ = ["HEALTHY", "status"]

# exit 0 for these overall states; major_outage (a critical check down) or unknown -> 1
HEALTHY = ("operational", "degraded")


def status(as_json: bool = JsonOpt) -> None:
    """The whole system: services, dependencies, flags, open incidents, active SLA triggers.
    Exits 1 on a major outage (a critical check down) or when nothing was probed yet."""
    body: dict[str, Any] = run(lambda: front().get("/api/system/status"))
    emit(body, as_json=as_json, render=lambda con: _render(con, body))
    if body.get("status") not in HEALTHY:
        raise typer.Exit(1)


def _render(con: Console, body: dict[str, Any]) -> None:
    feed = "connected" if body.get("feed", {}).get("connected") else "[red]NOT connected[/red]"
    con.print(f"[bold]Safeguard[/bold]: {styled(body.get('status'))}  ({body.get('generated_at', '')[:19]}, "
              f"event feed {feed})")
    for title, key in (("Services", "services"), ("Dependencies", "dependencies")):
        _print(con, title, ("name", "state", "checks"), _groups(body.get(key, {})))
    _print(con, "Flags", ("key", "state", "default", "version"),
                    ((k, f.get("state"), f.get("defaultVariant"), f.get("version"))
                     for k, f in body.get("flags", {}).items()))
    _print(con, "Open incidents", ("id", "service", "severity", "status", "level", "title", "opened"),
                    ((i.get("incident_id"), i.get("service"), i.get("severity"), i.get("status"), i.get("level"),
                      i.get("title"), (i.get("opened_at") or "")[:19])
                     for i in body.get("incidents", {}).get("open", [])))
    _print(con, "Active SLA triggers", ("service", "trigger", "value", "threshold", "fired"),
                    ((t.get("service"), t.get("trigger"), t.get("value"), t.get("threshold"),
                      (t.get("fired_at") or "")[:19]) for t in body.get("sla", {}).get("active_triggers", [])))
    for note in body.get("notes", []):
        con.print(f"[yellow]note:[/yellow] {note}", markup=True, highlight=False)


def _print(con: Console, title: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    rows = list(rows)
    if rows:
        con.print(table(title, columns, rows))
    else:
        con.print(f"[bold]{title}[/bold]: none")


def _groups(groups: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name, g in groups.items():
        checks = [f"{c}: {v.get('state')}" + ("" if v.get("state") == "up" else f" ({v.get('message')})")
                  for c, v in g.get("checks", {}).items()]
        rows.append((name, g.get("state", "unknown"), "; ".join(checks)))
    return rows
