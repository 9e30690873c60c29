"""Blue/green with a canary and automatic rollback (runbook: Blue-Green Deployment, Feature Flag
Protection, Step 4), the way Argo Rollouts and Flagger do it, on the ports of this package:
`TrafficSwitch` (HAProxy's runtime API, Kubernetes), `Instances` (supervisord), `CanaryWatch` (Kafka).

deploy: backup -> lint + rehearse -> migrate up to the release's schema -> its new flags exist, off ->
start the idle colour with the new version -> health gate -> preflight on it -> traffic 10/50/100 %,
baking each step while watching `sla.triggers` and the canary's own errors -> done, or roll back:
traffic back at once, the release's flags killed, the idle colour back on the old version.
`rollback` (by hand) does the same for the last deployment and also rolls the database back to the
migration it recorded, and `git revert HEAD --no-edit` when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy import migrations
from deploy.app import ROOT, AppSpec
from deploy.flagsapi import FlagsApi
from deploy.instances import Instances, running_version
from deploy.traffic import TrafficSwitch
from deploy.watch import CanaryWatch
from shared.events import DeploymentFinished, DeploymentRolledBack, DeploymentStarted, Event
from shared.settings import KafkaSettings

__all__ = ["DeployError", "Plan", "Record", "Release", "Step"]

log = logging.getLogger(__name__)
Report = Callable[["Step"], None]


class DeployError(RuntimeError):
    """The deploy stopped before any traffic moved (nothing to roll back) or a rollback failed."""


@dataclass(frozen=True, kw_only=True)
class Step:
    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Plan:
    version: str
    steps: tuple[int, ...] = (10, 50, 100)
    bake_s: float = 60.0
    preflight: bool = True
    backup: bool = True
    actor: str = "safeguard deploy"


@dataclass(kw_only=True)
class Record:
    """One deployment, as kept in `.stack/deploy/<app>.json` (newest last)."""

    deploy_id: str
    version: str
    from_version: str | None
    colour: str
    from_colour: str
    db_before: str | None
    db_after: str | None
    flags: list[str]
    started: str
    status: str = "started"  # started | live | rolled_back | failed
    reason: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Release:
    spec: AppSpec
    traffic: TrafficSwitch
    instances: Instances
    kafka: KafkaSettings
    dsn: str
    backup_dir: Path
    state_dir: Path = ROOT / ".stack" / "deploy"
    report: Report = lambda step: None  # noqa: E731
    flags: FlagsApi | None = None
    publish: Callable[[Event], Awaitable[None]] | None = None

    # --- state ---------------------------------------------------------------------------------------
    @property
    def _state(self) -> Path:
        return self.state_dir / f"{self.spec.name}.json"

    def history(self) -> list[Record]:
        try:
            return [Record(**r) for r in json.loads(self._state.read_text())["history"]]
        except FileNotFoundError:
            return []

    def _save(self, rec: Record) -> None:
        history = [r for r in self.history() if r.deploy_id != rec.deploy_id] + [rec]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state.with_suffix(".tmp")
        with tmp.open("w") as f:
            json.dump({"history": [asdict(r) for r in history[-50:]]}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._state)

    # --- the steps -----------------------------------------------------------------------------------
    async def _timed(self, rec: Record | None, name: str, action: Callable[[], Awaitable[str]]) -> str:
        t0 = time.perf_counter()
        try:
            detail = await action()
        except Exception as exc:
            step = Step(name=name, ok=False, detail=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)
            self._note(rec, step)
            raise DeployError(f"{name}: {step.detail}") from exc
        self._note(rec, Step(name=name, ok=True, detail=detail, seconds=time.perf_counter() - t0))
        return detail

    def _note(self, rec: Record | None, step: Step) -> None:
        self.report(step)
        if rec is not None:
            rec.steps.append(asdict(step))

    async def live_colour(self) -> str:
        weights = await self.traffic.weights()
        if not any(weights.values()):
            raise DeployError(f"no colour gets traffic ({weights}): `safeguard switch COLOUR` first")
        return max(weights, key=lambda c: weights[c])

    async def _applied(self) -> str | None:
        states = await migrations.status(dsn=self.dsn, schema=self.spec.schema, directory=self.spec.migrations)
        done = [s.version for s in states if s.applied]
        return done[-1] if done else None

    async def _emit(self, event: Event) -> str:
        if self.publish is None:
            return "no publisher"
        try:
            await asyncio.wait_for(self.publish(event), timeout=5)
        except Exception as exc:  # noqa: BLE001 - Kafka away must never stop a rollback
            log.warning("deploy event %s not published: %s", _type_of(event), exc)
            return f"event not published: {type(exc).__name__}"
        return f"{_type_of(event)} published"

    async def _gate(self, colour: str, *, timeout_s: float = 20) -> str:
        """The switch itself sees the colour healthy (HAProxy's check) before it gets a request."""
        deadline = time.monotonic() + timeout_s
        while not await self.traffic.healthy(colour):
            if time.monotonic() > deadline:
                raise DeployError(f"{colour} is not healthy in the traffic switch after {timeout_s:.0f}s")
            await asyncio.sleep(0.25)
        return f"{colour} UP in the traffic switch"

    async def _prepare_db(self, rec: Record, plan: Plan) -> None:
        target = self.spec.releases.get(plan.version, {}).get("migration")
        if plan.backup:
            from deploy import backup

            async def take() -> str:
                b = await backup.backup(dsn=self.dsn, directory=self.backup_dir, keep=7, check=True)
                return f"{b.path.name}: {sum(b.rows.values())} rows, verified"
            await self._timed(rec, "backup", take)

        async def check() -> str:
            from deploy.lint import lint
            from deploy.rehearse import rehearse

            pending = [s.version for s in await migrations.status(dsn=self.dsn, schema=self.spec.schema,
                                                                  directory=self.spec.migrations) if not s.applied]
            files = [self.spec.migrations / f"{v}.up.sql" for v in pending if target is None or v <= target]
            blocked = [f for f in lint(files=files) if f.level == "block"] if files else []
            if blocked:
                raise DeployError("; ".join(f"{b.file}:{b.line} {b.rule}" for b in blocked))
            r = await rehearse(dsn=self.dsn, schema=self.spec.schema, directory=self.spec.migrations,
                               verify_sql=self.spec.verify_sql, previous_sql=self.spec.previous_sql, until=target)
            if not r.ok:
                raise DeployError("rehearsal failed: " + "; ".join(s.detail for s in r.steps if not s.ok))
            return f"lint clean on {len(files)} file(s); rehearsal passed"
        await self._timed(rec, "lint + rehearse", check)

        async def up() -> str:
            done = await migrations.migrate(dsn=self.dsn, schema=self.spec.schema, directory=self.spec.migrations,
                                            until=target)
            rec.db_after = await self._applied()
            return f"applied {', '.join(done) or 'nothing'}; schema at {rec.db_after}"
        await self._timed(rec, "migrate", up)

    async def _preflight(self, rec: Record, plan: Plan, colour: str) -> None:
        from deploy.preflight import run_preflight

        async def check() -> str:
            checks = await run_preflight(spec=self.spec, version=plan.version, target=self.spec.colours[colour].url,
                                         take_backup=False)
            failed = [c for c in checks if not c.ok]
            if failed:
                raise DeployError("; ".join(f"{c.line}: {c.why}" for c in failed))
            return f"{len(checks)} checklist lines pass on {colour}"
        await self._timed(rec, "preflight", check)

    # --- deploy --------------------------------------------------------------------------------------
    async def deploy(self, plan: Plan) -> Record:
        if plan.version not in self.spec.releases:
            raise DeployError(f"unknown version {plan.version!r}: {self.spec.source} has {sorted(self.spec.releases)}")
        if not plan.steps or plan.steps[-1] != 100 or any(not 0 < s <= 100 for s in plan.steps) \
                or list(plan.steps) != sorted(set(plan.steps)):
            raise DeployError(f"canary steps must rise and end at 100, got {list(plan.steps)}")
        live = await self.live_colour()
        idle = next(c for c in self.spec.colours if c != live)
        rec = Record(deploy_id=uuid.uuid4().hex[:12], version=plan.version,
                     from_version=await running_version(self.spec, live), colour=idle, from_colour=live,
                     db_before=await self._applied(), db_after=None,
                     flags=list(self.spec.releases[plan.version].get("flags", [])),
                     started=datetime.now(UTC).isoformat())
        self._save(rec)
        try:
            await self._prepare_db(rec, plan)
            flags = self.flags or FlagsApi(actor=plan.actor)

            async def ensure() -> str:
                made = [k for k in rec.flags if await flags.ensure_off(k, reason=f"release {plan.version}")]
                return f"created off: {', '.join(made) or 'none'}; existing left as they are"
            await self._timed(rec, "flags", ensure)
            await self._timed(rec, f"start {idle}", lambda: self._start(idle, plan.version))
            await self._timed(rec, "health gate", lambda: self._gate(idle))
            if plan.preflight:
                await self._preflight(rec, plan, idle)
        except DeployError as exc:
            rec.status, rec.reason = "failed", str(exc)
            await self._undo(rec)
            self._save(rec)
            raise
        await self._emit(DeploymentStarted(service=self.spec.name, deploy_id=rec.deploy_id, version=rec.version,
                                           from_version=rec.from_version, colour=idle, from_colour=live,
                                           steps=list(plan.steps), actor=plan.actor))
        try:
            return await self._canary(rec, plan)
        except DeployError as exc:
            rec.status, rec.reason = "failed", str(exc)
            await self._undo(rec)
            self._save(rec)
            raise

    async def _undo(self, rec: Record) -> None:
        """A deploy that stopped before any traffic moved leaves nothing behind: the idle colour back on
        the old version, the database back to where the deploy found it (best effort, each noted)."""
        with contextlib.suppress(DeployError):
            if rec.from_version and await running_version(self.spec, rec.colour) != rec.from_version:
                await self._timed(rec, f"restore {rec.colour}", lambda: self._start(rec.colour, str(rec.from_version)))
        with contextlib.suppress(DeployError):
            if rec.db_after is not None and rec.db_after != rec.db_before:
                await self._rollback_db(rec)

    async def _start(self, colour: str, version: str) -> str:
        await self.instances.start(colour, version)
        return f"{colour} answers version {version}"

    async def _canary(self, rec: Record, plan: Plan) -> Record:
        t_start = time.perf_counter()
        watch = CanaryWatch(service=self.spec.name, instance=f"{self.spec.name}-{rec.colour}", kafka=self.kafka)
        try:
            await watch.start()
        except Exception as exc:  # nothing moved yet: the deploy stops and undoes what it did
            raise DeployError(f"canary watch could not start: {type(exc).__name__}: {exc}") from exc
        try:
            for pct in plan.steps:
                await self.traffic.set_weights({rec.colour: pct, rec.from_colour: 100 - pct})
                watch.reset()
                self._note(rec, Step(name=f"traffic {pct}%", ok=True, detail=f"{rec.colour} {pct}%, "
                                     f"{rec.from_colour} {100 - pct}%"))
                reason = await self._bake(watch, plan.bake_s)
                if reason is not None:
                    await self.rollback_traffic(rec, reason=reason, automatic=True)
                    return rec
        except Exception as exc:  # noqa: BLE001 - e.g. the new colour went down mid-canary: back, at once
            await self.rollback_traffic(rec, reason=f"canary step failed: {type(exc).__name__}: {exc}", automatic=True)
            return rec
        finally:
            await watch.stop()
        rec.status = "live"
        self._save(rec)
        self._note(rec, Step(name="live", ok=True, detail=f"{rec.version} on {rec.colour} takes all traffic",
                             seconds=time.perf_counter() - t_start))
        await self._emit(DeploymentFinished(service=self.spec.name, deploy_id=rec.deploy_id, version=rec.version,
                                            from_version=rec.from_version, colour=rec.colour,
                                            from_colour=rec.from_colour, seconds=time.perf_counter() - t_start))
        return rec

    @staticmethod
    async def _bake(watch: CanaryWatch, bake_s: float) -> str | None:
        deadline = time.monotonic() + bake_s
        while (left := deadline - time.monotonic()) > 0:
            if (reason := watch.verdict()) is not None:
                return reason
            watch.changed.clear()
            try:
                await asyncio.wait_for(watch.changed.wait(), timeout=min(left, 1.0))
            except TimeoutError:
                pass
        return watch.verdict()

    # --- rollback ------------------------------------------------------------------------------------
    async def rollback_traffic(self, rec: Record, *, reason: str, automatic: bool,
                               database: bool = False) -> DeploymentRolledBack:
        """Traffic back first (it is what users feel), then the release's flags off, then the idle colour
        back on the old version, then (by hand only) the database back to where this deploy found it."""
        t0 = time.perf_counter()
        await self.traffic.switch(rec.from_colour)
        switch_ms = (time.perf_counter() - t0) * 1000
        self._note(rec, Step(name="traffic back", ok=True, detail=f"all traffic on {rec.from_colour} ({reason})",
                             seconds=switch_ms / 1000))
        flags = self.flags or FlagsApi(actor="safeguard rollback")
        killed: list[str] = []
        for key in rec.flags:
            try:
                await flags.kill(key, reason=f"rollback of {rec.version}: {reason}"[:200])
                killed.append(key)
            except Exception as exc:  # noqa: BLE001 - reported, the rest of the rollback goes on
                self._note(rec, Step(name=f"kill {key}", ok=False, detail=str(exc)))
        self._note(rec, Step(name="flags killed", ok=len(killed) == len(rec.flags), detail=", ".join(killed) or "none"))
        healthy = await self.traffic.healthy(rec.from_colour)
        if rec.from_version and await running_version(self.spec, rec.colour) != rec.from_version:
            try:
                await self._timed(rec, f"restore {rec.colour}", lambda: self._start(rec.colour, str(rec.from_version)))
            except DeployError:
                pass  # noted; the traffic is already safe on the old colour
        db_to = await self._rollback_db(rec) if database else None
        rec.status, rec.reason = "rolled_back", reason
        self._save(rec)
        event = DeploymentRolledBack(service=self.spec.name, deploy_id=rec.deploy_id, version=rec.version,
                                     from_version=rec.from_version, colour=rec.from_colour, from_colour=rec.colour,
                                     reason=reason[:500], automatic=automatic, switch_ms=switch_ms,
                                     flags_killed=killed, database_to=db_to, healthy=healthy,
                                     started_at=datetime.fromisoformat(rec.started))
        self._note(rec, Step(name="recorded", ok=True, detail=await self._emit(event)))
        return event

    async def _rollback_db(self, rec: Record) -> str | None:
        async def down() -> str:
            undone: list[str] = []
            while (current := await self._applied()) is not None and (rec.db_before is None or current > rec.db_before):
                version = await migrations.rollback(dsn=self.dsn, schema=self.spec.schema,
                                                    directory=self.spec.migrations)
                undone.append(str(version))
            return f"rolled back {', '.join(undone) or 'nothing'}; schema at {rec.db_before}"
        await self._timed(rec, "database", down)
        return rec.db_before

    async def rollback(self, *, reason: str, database: bool = True, git_repo: Path | None = None) -> DeploymentRolledBack:
        """Step 4 in one command: the last deployment undone (traffic, flags, instances, database, git)."""
        history = [r for r in self.history() if r.status in ("started", "live", "rolled_back")]
        if not history:
            raise DeployError(f"no deployment of {self.spec.name} recorded in {self._state}: nothing to roll back")
        rec = history[-1]
        event = await self.rollback_traffic(rec, reason=reason, automatic=False, database=database)
        if git_repo is not None:
            async def revert() -> str:
                run = await asyncio.to_thread(subprocess.run, ["git", "revert", "HEAD", "--no-edit"], cwd=git_repo,
                                              capture_output=True, text=True, timeout=60)
                if run.returncode != 0:
                    raise DeployError(f"git revert HEAD --no-edit in {git_repo}: {run.stderr.strip()[:300]}")
                return run.stdout.strip().splitlines()[0] if run.stdout.strip() else "reverted"
            await self._timed(rec, "git revert", revert)
        return event

    async def switch(self, colour: str) -> float:
        """All traffic to `colour` after the switch sees it healthy; returns the switch's milliseconds."""
        if colour not in self.spec.colours:
            raise DeployError(f"unknown colour {colour!r}: {sorted(self.spec.colours)}")
        await self._gate(colour, timeout_s=5)
        t0 = time.perf_counter()
        await self.traffic.switch(colour)
        return (time.perf_counter() - t0) * 1000


def _type_of(event: Event) -> str:
    """The event's CloudEvents type (`deploy.started`): every concrete event sets the `type` Literal."""
    return str(getattr(event, "type", type(event).__name__))
