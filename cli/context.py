"""What every command needs: the front door client, and one way to end with an exit code."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from cli.client import Front
from cli.config import load_config
from cli.errors import CliError
from cli.output import error

__all__ = ["JsonOpt", "front", "run"]

T = TypeVar("T")

JsonOpt = typer.Option(False, "--json", help="print JSON (for pipelines) instead of tables")


def front() -> Front:
    return Front(load_config())


def run(step: Callable[[], T]) -> T:
    """Run one step; a CliError prints its message and exits with its code."""
    try:
        return step()
    except CliError as exc:
        error(str(exc))
        raise typer.Exit(int(exc.code)) from None
