"""Printing: rich tables for people, `--json` for pipelines, errors on stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["console", "emit", "error", "styled", "table"]

_STYLES = {"up": "green", "pass": "green", "ok": "green", "ENABLED": "green", "done": "green", "succeeded": "green", "operational": "green",
           "degraded": "yellow", "warn": "yellow", "unknown": "yellow", "skipped": "yellow",
           "down": "red", "fail": "red", "failed": "red", "DISABLED": "dim", "killed": "red", "open": "red", "major_outage": "red"}


def console() -> Console:
    # piped output (logs, CI) gets room for whole rows instead of rich's default 80 columns
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, soft_wrap=False, width=160 if wide else None)


def emit(data: Any, *, as_json: bool, render: Callable[[Console], None]) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        render(console())


def error(message: str) -> None:
    Console(stderr=True, highlight=False).print(f"[red]error:[/red] {escape(message)}", markup=True)


def styled(value: Any) -> str:
    text = "" if value is None else str(value)
    style = _STYLES.get(text)
    return f"[{style}]{text}[/{style}]" if style else escape(text)


def table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold")
    for i, c in enumerate(columns):
        t.add_column(c, no_wrap=i == 0, overflow="fold")
    for row in rows:
        t.add_row(*(styled(v) for v in row))
    return t
