"""`db` (migrate, rollback, lint, status, rehearse) and `backup` (backup, restore, list) for the protected app.
Exit codes: 0 done, 1 blocked or failed. `--json` prints one JSON document for pipelines.
`--app NAME|PATH` reads the app's safeguard.toml (deploy/app.py); without it the demo's, with
`DEPLOY_SCHEMA_NAME` / `DEPLOY_MIGRATIONS` still choosing when set.
Run: `python -m deploy.cli db rollback` (what `npm run db:rollback` calls)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from deploy import backup as backups
from deploy import migrations
from deploy.app import AppSpec, load_app
from deploy.lint import LintError, lint
from deploy.rehearse import Rehearsal, rehearse
from deploy.settings import DeploySettings

__all__ = ["app", "backup_app", "db_app"]

T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]
AppOpt = Annotated[str | None, typer.Option("--app", help="app name (examples/NAME/safeguard.toml) or its path")]
db_app = typer.Typer(help="The protected app's migrations.", no_args_is_help=True)
backup_app = typer.Typer(help="Backups of the protected app's database.", no_args_is_help=True)
app = typer.Typer(no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(backup_app, name="backup")
out = Console()
err = Console(stderr=True)


def _settings() -> DeploySettings:
    return DeploySettings()


@dataclass(frozen=True, kw_only=True)
class _Target:
    dsn: str
    schema: str
    migrations: Path
    spec: AppSpec


def _target(app: str | None, as_json: bool) -> _Target:
    """`--app` wins; without it the demo's file, and DEPLOY_SCHEMA_NAME / DEPLOY_MIGRATIONS when set."""
    s = _settings()
    try:
        spec = load_app(app or "demo")
    except (OSError, KeyError, ValueError) as exc:  # no file, a missing key, bad TOML (a ValueError)
        raise _fail(as_json, exc) from exc
    env = s.model_fields_set if app is None else set()
    return _Target(dsn=s.dsn, spec=spec, schema=s.schema_name if "schema_name" in env else spec.schema,
                   migrations=s.migrations if "migrations" in env else spec.migrations)


def _emit(as_json: bool, data: Any, text: str | Table) -> None:
    if as_json:
        print(json.dumps(data, default=str))
    else:
        out.print(text)


def _fail(as_json: bool, error: Exception) -> typer.Exit:
    message = f"{type(error).__name__}: {error}"
    if as_json:
        print(json.dumps({"ok": False, "error": message}))
    else:
        err.print(f"[red]failed[/red] {message}")
    return typer.Exit(1)


async def _terminable(coro: Coroutine[Any, Any, T], received: list[int]) -> T:
    """Ctrl-C (SIGINT) and SIGTERM cancel the command, so its `finally` blocks run (scratch databases dropped).
    Both are handled here, not left to Python's KeyboardInterrupt: a process started with SIGINT ignored (a
    background job, some CI runners) would otherwise never see an interrupt. A repeated signal does not cut
    the clean-up short."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()

    def stop(sig: int) -> None:
        if not received and task is not None:
            task.cancel()
        received.append(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        return await coro
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _call(as_json: bool, coro: Coroutine[Any, Any, T]) -> T:
    received: list[int] = []
    try:
        return asyncio.run(_terminable(coro, received))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sig = signal.Signals(received[0]) if received else signal.SIGINT  # a KeyboardInterrupt before the loop ran
        _fail(as_json, RuntimeError(f"interrupted by {sig.name}; scratch databases were dropped"))
        raise typer.Exit(128 + sig) from None
    except Exception as exc:  # noqa: BLE001 - ours, OSError, asyncpg's (a failed statement is rolled back)
        raise _fail(as_json, exc) from exc


@db_app.command("migrate")
def migrate_cmd(app: AppOpt = None, as_json: JsonOpt = False) -> None:
    """Apply every pending migration, in order, each in its own transaction."""
    t = _target(app, as_json)
    done = _call(as_json, migrations.migrate(dsn=t.dsn, schema=t.schema, directory=t.migrations))
    _emit(as_json, {"ok": True, "applied": done}, f"applied: {', '.join(done) or 'nothing pending'}")


@db_app.command("rollback")
def rollback_cmd(app: AppOpt = None, as_json: JsonOpt = False) -> None:
    """Undo the last applied migration with its down file (runbook Step 4)."""
    t = _target(app, as_json)
    version = _call(as_json, migrations.rollback(dsn=t.dsn, schema=t.schema, directory=t.migrations))
    _emit(as_json, {"ok": True, "rolled_back": version},
          f"rolled back: {version}" if version else "nothing to roll back: no migration is applied")


@db_app.command("status")
def status_cmd(app: AppOpt = None, as_json: JsonOpt = False) -> None:
    """Every migration, applied or pending, and whether it has a rollback file."""
    t = _target(app, as_json)
    states = _call(as_json, migrations.status(dsn=t.dsn, schema=t.schema, directory=t.migrations))
    table = Table("version", "applied", "rollback file")
    for st in states:
        table.add_row(st.version, "yes" if st.applied else "pending", "yes" if st.has_down else "[red]missing[/red]")
    _emit(as_json, {"ok": True, "migrations": [vars(st) for st in states]}, table)


@db_app.command("lint")
def lint_cmd(files: Annotated[list[Path] | None, typer.Argument(help="default: every up migration")] = None,
             app: AppOpt = None, as_json: JsonOpt = False) -> None:
    """squawk on the up migrations: dropping, renames, type changes, NOT NULL without default block."""
    paths = files or sorted(_target(app, as_json).migrations.glob("*.up.sql"))
    try:
        findings = lint(files=paths)
    except LintError as exc:
        raise _fail(as_json, exc) from exc
    blocked = any(f.level == "block" for f in findings)
    table = Table("level", "file:line", "rule", "message")
    for f in findings:
        table.add_row("[red]BLOCK[/red]" if f.level == "block" else "warn", f"{f.file}:{f.line}", f.rule,
                      f.why or f.message)
    _emit(as_json, {"ok": not blocked, "findings": [f.as_dict() for f in findings]}, table)
    if blocked:
        raise typer.Exit(1)


def _steps_table(r: Rehearsal) -> Table:
    what = ", ".join(r.applied) or "nothing"
    table = Table("step", "result", "seconds", "detail", title=f"rehearsal of {what} ({r.mode}) on {r.database}")
    for st in r.steps:
        table.add_row(st.name, "ok" if st.ok else "[red]FAILED[/red]", f"{st.seconds:.3f}", st.detail)
    return table


@db_app.command("rehearse")
def rehearse_cmd(app: AppOpt = None,
                 source: Annotated[str, typer.Option(help="dump (pg_dump | pg_restore) or template (falls back "
                                                          "to dump while the database has connections)")] = "dump",
                 as_json: JsonOpt = False) -> None:
    """On a scratch copy: up, verify queries, down, schema unchanged, up, the previous version's queries."""
    t = _target(app, as_json)
    result = _call(as_json, rehearse(dsn=t.dsn, schema=t.schema, directory=t.migrations,
                                     verify_sql=t.spec.verify_sql, previous_sql=t.spec.previous_sql,
                                     source=source))  # type: ignore[arg-type]  # checked by rehearse
    _emit(as_json, result.as_dict(), _steps_table(result))
    if not result.ok:
        raise typer.Exit(1)


def _backup_table(items: list[backups.Backup]) -> Table:
    table = Table("file", "created", "size", "tables", "rows", "verified", "timings")
    for b in items:
        table.add_row(b.path.name, b.created, f"{b.size_bytes:,}", str(len(b.rows)), f"{sum(b.rows.values()):,}",
                      {True: "yes", False: "[red]FAILED[/red]", None: "no"}[b.verified],
                      " ".join(f"{k}={v}" for k, v in b.timings.items()))
    return table


@backup_app.command("backup")
def backup_cmd(verify: Annotated[bool, typer.Option(help="restore into a scratch DB and compare")] = True,
               as_json: JsonOpt = False) -> None:
    """pg_dump -Fc into the backup directory, keep the newest N, verify by restoring."""
    s = _settings()
    item = _call(as_json, backups.backup(dsn=s.dsn, directory=s.backup_dir, keep=s.keep, check=verify))
    _emit(as_json, {"ok": True, "backup": item.as_dict()}, _backup_table([item]))


@backup_app.command("restore")
def restore_cmd(database: Annotated[str, typer.Option(help="a NEW database to restore into")],
                name: Annotated[str | None, typer.Argument(help="backup file name; default: newest")] = None,
                as_json: JsonOpt = False) -> None:
    """Restore a backup into a new database on the same server; row counts must equal the dump's."""
    s = _settings()
    items = [b for b in backups.list_backups(directory=s.backup_dir) if name in (None, b.path.name)]
    if not items:
        raise _fail(as_json, FileNotFoundError(f"no backup {name or ''} in {s.backup_dir}".replace("  ", " ")))
    timings = _call(as_json, backups.restore(dsn=s.dsn, item=items[0], database=database))
    _emit(as_json, {"ok": True, "restored": str(items[0].path), "database": database, "timings": timings},
          f"restored {items[0].path.name} into {database}: row counts equal ({timings})")


@backup_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """The backups kept, newest first."""
    items = backups.list_backups(directory=_settings().backup_dir)
    _emit(as_json, {"ok": True, "backups": [b.as_dict() for b in items]}, _backup_table(items))


if __name__ == "__main__":
    app()
