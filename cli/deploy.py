"""`safeguard deploy`, `switch`, `rollback`: blue/green with a canary and automatic rollback
(deploy/release.py). Each step prints as it happens; `--json` prints one document at the end.
Exit codes: 0 done, 1 rolled back or a step failed, 2 usage, 3 the traffic switch is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.markup import escape

from cli.config import find_home
from cli.context import JsonOpt
from cli.errors import Exit
from cli.output import console, emit, error
from deploy.app import load_app
from deploy.release import DeployError, Plan, Release, Step

__all__ = ["deploy", "rollback", "switch"]

T = TypeVar("T")
AppOpt = typer.Option("demo", "--app", help="examples/NAME/safeguard.toml, or a path to one")


def _seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text.strip())
    if not m:
        raise typer.BadParameter(f"{text!r}: a duration like 60s, 2m or 500ms", param_hint="--bake")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def _steps(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: percents like 10,50,100", param_hint="--canary") from None


def _printer(as_json: bool) -> Callable[[Step], None]:
    con = console()

    def show(step: Step) -> None:
        if not as_json:
            mark = "[green]ok[/green]  " if step.ok else "[red]FAIL[/red]"
            con.print(f"{mark} {escape(step.name):<16} {step.seconds:7.2f}s  {escape(step.detail)}")
    return show


@asynccontextmanager
async def _release(app: str, as_json: bool) -> AsyncIterator[Release]:
    from deploy.instances import make_instances
    from deploy.settings import DeploySettings
    from deploy.traffic import make_traffic
    from shared.kafka import KafkaPublisher
    from shared.settings import KafkaSettings

    spec = load_app(app)
    kafka = KafkaSettings(_env_file=find_home(environ=os.environ, cwd=Path.cwd()) / ".stack" / "env")  # type: ignore[call-arg]
    settings = DeploySettings()
    release = Release(spec=spec, traffic=make_traffic(spec), instances=make_instances(spec), kafka=kafka,
                      dsn=settings.dsn, backup_dir=settings.backup_dir, state_dir=settings.state_dir,
                      report=_printer(as_json))
    async with contextlib.AsyncExitStack() as stack:
        try:
            pub = await asyncio.wait_for(stack.enter_async_context(
                KafkaPublisher.start(kafka, source="/safeguard/deploy")), timeout=10)
            release.publish = pub.publish
        except Exception as exc:  # noqa: BLE001 - a deploy event is a record, not a gate
            error(f"Kafka unavailable, deploy events will not be published: {type(exc).__name__}: {exc}")
        yield release


def _run(app: str, as_json: bool, action: Callable[[Release], Awaitable[T]]) -> T:
    async def go() -> T:
        async with _release(app, as_json) as release:
            return await action(release)
    try:
        return asyncio.run(go())
    except DeployError as exc:
        _fail(as_json, str(exc), Exit.FAILED)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        _fail(as_json, f"{type(exc).__name__}: {exc}", Exit.USAGE)
    except (ConnectionError, OSError, TimeoutError) as exc:
        _fail(as_json, f"{type(exc).__name__}: {exc}", Exit.UNREACHABLE)


def _fail(as_json: bool, message: str, code: Exit) -> NoReturn:
    if as_json:
        emit({"ok": False, "error": message}, as_json=True, render=lambda c: None)
    else:
        error(message)
    raise typer.Exit(int(code))


def deploy(version: str = typer.Option(..., "--version", help="a release of the app description, e.g. v2"),
           canary: str = typer.Option("10,50,100", help="traffic percents for the new colour, ending at 100"),
           bake: str = typer.Option("60s", help="how long each step is watched before the next"),
           preflight: bool = typer.Option(True, help="run the checklist on the new colour before any traffic"),
           app: str = AppOpt, as_json: bool = JsonOpt) -> None:
    """Blue/green: start VERSION on the idle colour, shift traffic step by step, roll back by itself."""
    plan = Plan(version=version, steps=_steps(canary), bake_s=_seconds(bake), preflight=preflight)
    t0 = time.perf_counter()
    rec = _run(app, as_json, lambda r: r.deploy(plan))
    out = {"ok": rec.status == "live", **asdict(rec), "seconds": round(time.perf_counter() - t0, 2)}
    emit(out, as_json=as_json, render=lambda con: con.print(
        f"[green]{rec.version} is live on {rec.colour}[/green]" if rec.status == "live"
        else f"[red]rolled back[/red] to {rec.from_colour} ({escape(rec.from_version or '?')}): {escape(rec.reason)}"))
    if rec.status != "live":
        raise typer.Exit(int(Exit.FAILED))


def switch(colour: str = typer.Argument(..., help="blue or green"), app: str = AppOpt, as_json: bool = JsonOpt) -> None:
    """All new requests to COLOUR at once (after the switch sees it healthy); in-flight ones finish."""
    ms = _run(app, as_json, lambda r: r.switch(colour))
    emit({"ok": True, "colour": colour, "switch_ms": round(ms, 2)}, as_json=as_json,
         render=lambda con: con.print(f"all traffic on {escape(colour)} ({ms:.1f} ms)"))


def rollback(reason: str = typer.Option("manual rollback", help="written in the incident and the audit"),
             database: bool = typer.Option(True, help="roll the database back to the migration the deploy found"),
             git: bool = typer.Option(False, "--git", help="also `git revert HEAD --no-edit` in --repo"),
             repo: Path = typer.Option(Path("."), help="the app's repository for --git"),
             app: str = AppOpt, as_json: bool = JsonOpt) -> None:
    """Step 4 in one command: traffic back, new flags killed, database and (--git) code rolled back."""
    event = _run(app, as_json, lambda r: r.rollback(reason=reason, database=database,
                                                    git_repo=repo.resolve() if git else None))
    data: dict[str, Any] = {"ok": event.healthy, **event.model_dump(mode="json")}
    emit(data, as_json=as_json, render=lambda con: con.print(
        f"traffic on {event.colour} in {event.switch_ms:.1f} ms; flags killed: {', '.join(event.flags_killed) or 'none'}; "
        f"database at {event.database_to or 'unchanged'}"))
    if not event.healthy:
        raise typer.Exit(int(Exit.FAILED))
