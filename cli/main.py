"""The `safeguard` console script: one typer app; `deploy.cli`'s sub-apps are mounted when installed."""

from __future__ import annotations

import typer

from cli.flags import flags_app
from cli.preflight import preflight
from cli.recover import recover
from cli.status import status

__all__ = ["app", "main"]

app = typer.Typer(name="safeguard", no_args_is_help=True, add_completion=False,
                  help="Operate Safeguard through its front door (SAFEGUARD_FRONT_URL, default "
                       "http://127.0.0.1:3000). Exit codes: 0 ok, 1 failed check or operation, 2 usage, "
                       "3 stack unreachable.")
app.command()(status)
app.command()(recover)
app.command()(preflight)
app.add_typer(flags_app, name="flags")

try:  # the deploy half (db, backup, restore) lives in its own package
    from deploy.cli import backup_app, db_app  # type: ignore[import-not-found,unused-ignore]

    from cli.deploy import deploy, rollback, switch
except ImportError:
    pass
else:
    app.add_typer(db_app, name="db")
    app.add_typer(backup_app)
    for command in (deploy, switch, rollback):
        app.command()(command)


def main() -> None:
    app()
