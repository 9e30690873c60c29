"""The runbook's Pre-Deployment Checklist, run for real: one function per line, each a `Check` saying
pass or fail and why. `run_preflight` runs them all in the runbook's order (the deploy orchestrator calls it;
`safeguard preflight` prints it). Nothing is assumed: each line asks the database, the flags API or the app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from cli.config import load_config
from deploy import migrations
from deploy.app import AppSpec
from deploy.backup import BackupError, backup, list_backups
from deploy.lint import lint
from deploy.preflight_flags import (FlagsApi, FlagsApiError, ProbeFailed, StackUnreachable, get_patiently, serves_on,
                                    toggle)
from deploy.settings import DeploySettings

__all__ = ["Check", "LINES", "run_preflight"]

Line = Callable[["_Run"], Awaitable[str]]  # returns why it passed; raises _Fail (or anything) with why not


@dataclass(frozen=True, kw_only=True)
class Check:
    line: str
    ok: bool
    why: str
    seconds: float
    id: str = ""
    group: str = ""
    unreachable: bool = False  # the front door did not answer (the CLI exits 3)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Fail(Exception):
    """The line does not hold; the message says why."""


@dataclass(kw_only=True)
class _Run:
    spec: AppSpec
    version: str | None
    target: str
    take_backup: bool
    settings: DeploySettings
    http: httpx.AsyncClient
    flags: FlagsApi
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def pre(self) -> dict[str, Any]:
        return self.spec.preflight

    async def once(self, name: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """One database status / rehearsal / breaker list per run, shared by the lines that need it."""
        if name not in self.cache:
            try:
                self.cache[name] = await make()
            except Exception as exc:  # noqa: BLE001 - every line that needs it fails with the same why
                self.cache[name] = exc
        if isinstance(self.cache[name], Exception):
            raise self.cache[name]
        return self.cache[name]


# ---- 1. Database Safety ---------------------------------------------------------------------------

async def backup_taken(run: _Run) -> str:
    """The newest backup of this database is at most `backup_max_age_minutes` old and was verified by a
    restore (`take_backup`: take and verify one now first)."""
    directory, dsn = run.settings.backup_dir, run.settings.dsn
    if run.take_backup:
        try:
            await backup(dsn=dsn, directory=directory, keep=run.settings.keep, check=True)
        except (BackupError, OSError) as exc:
            raise _Fail(f"--backup failed: {exc}") from None
    name = urlsplit(dsn).path.lstrip("/") or "postgres"
    items = sorted((b for b in list_backups(directory=directory) if b.path.name.startswith(f"{name}-")),
                   key=lambda b: b.created, reverse=True)
    if not items:
        raise _Fail(f"no backup of database {name} in {directory} (take one: `safeguard backup backup`, "
                    "or preflight --backup)")
    newest, limit = items[0], float(run.pre.get("backup_max_age_minutes", 60))
    age = (datetime.now(UTC) - datetime.fromisoformat(newest.created)).total_seconds() / 60
    if age > limit:
        raise _Fail(f"the newest backup {newest.path.name} is {age:.0f} min old (at most {limit:g} min)")
    if newest.verified is not True:
        raise _Fail(f"{newest.path.name} was never restored to check it (taken without verify)"
                    if newest.verified is None else
                    f"{newest.path.name} is NOT restorable: its restore into a scratch database did not check out")
    return (f"{newest.path.name}: {age:.1f} min old (limit {limit:g}), restored into a scratch database with "
            f"the same row counts ({sum(newest.rows.values())} rows in {len(newest.rows)} tables)")


async def _states(run: _Run) -> list[migrations.MigrationState]:
    async def make() -> list[migrations.MigrationState]:
        return await migrations.status(dsn=run.settings.dsn, schema=run.spec.schema, directory=run.spec.migrations)
    result: list[migrations.MigrationState] = await run.once("states", make)
    return result


async def _rehearsal(run: _Run) -> Any:
    async def make() -> Any:
        try:
            from deploy.rehearse import rehearse  # written beside this; absent in an older checkout
        except ImportError as exc:
            raise _Fail(f"rehearse not available ({exc})") from None
        return await rehearse(dsn=run.settings.dsn, schema=run.spec.schema, directory=run.spec.migrations,
                              verify_sql=run.spec.verify_sql, previous_sql=run.spec.previous_sql)
    return await run.once("rehearsal", make)


def _first_failed(rehearsal: Any) -> str:
    step = next((s for s in rehearsal.steps if not s.ok), None)
    return f"step {step.name!r}: {step.detail[:400]}" if step else "no steps ran"


def _current(run: _Run) -> str | None:
    """The release being deployed: `version`, else the last one in the app description."""
    return run.version or (list(run.spec.releases)[-1] if run.spec.releases else None)


def _release_migration(run: _Run) -> str | None:
    version = run.spec.releases.get(_current(run) or "", {}).get("migration")
    if version and not (run.spec.migrations / f"{version}.up.sql").is_file():
        raise _Fail(f"release {_current(run)} runs on migration {version}, which is not in {run.spec.migrations}")
    return str(version) if version else None


async def migration_tested(run: _Run) -> str:
    """The pending migrations pass lint (no blocking rule) and a rehearsal on a scratch clone."""
    _release_migration(run)
    pending = [s.version for s in await _states(run) if not s.applied]
    findings = lint(files=[run.spec.migrations / f"{v}.up.sql" for v in pending])
    blocks = [f for f in findings if f.level == "block"]
    if blocks:
        raise _Fail("lint blocks: " + "; ".join(f"{f.file}:{f.line} {f.rule} ({f.why})" for f in blocks))
    rehearsal = await _rehearsal(run)
    if not rehearsal.ok:
        raise _Fail(f"rehearsal failed at {_first_failed(rehearsal)}")
    what = f"pending {', '.join(pending)}" if pending else f"nothing pending, the last applied ({rehearsal.mode})"
    warns = len(findings) - len(blocks)
    return (f"{what}: lint clean{f' ({warns} warnings)' if warns else ''}; rehearsed on {rehearsal.database} "
            f"(up, verify, down, up again{', previous version queries' if run.spec.previous_sql else ''})")


async def rollback_checked(run: _Run) -> str:
    """Every migration has a down file, and the rehearsal rolled the migrations back to the same schema."""
    states = await _states(run)
    missing = [s.version for s in states if not s.has_down]
    if missing:
        raise _Fail(f"no rollback file for {', '.join(missing)} (each NNNN_name.up.sql needs NNNN_name.down.sql "
                    f"in {run.spec.migrations})")
    rehearsal = await _rehearsal(run)
    steps = {s.name: s for s in rehearsal.steps}
    down, same = steps.get("migrate down"), steps.get("compare schema")
    if not (down and down.ok and same and same.ok):
        raise _Fail(f"the rehearsal did not roll back to the same schema: {_first_failed(rehearsal)}")
    return f"{len(states)} migrations with down files; rehearsal: {down.detail}, {same.detail}"


# ---- 2. Feature Flags Ready -----------------------------------------------------------------------

def _release_flags(run: _Run) -> list[str]:
    if run.version:
        return list(run.spec.releases[run.version].get("flags", []))
    return list(dict.fromkeys(k for r in run.spec.releases.values() for k in r.get("flags", [])))


async def _existing_flags(run: _Run) -> dict[str, dict[str, Any]]:
    """The release's flags as the flags API has them; with no version, the ones created so far."""
    async def make() -> dict[str, dict[str, Any]]:
        found = {k: await run.flags.get(k) for k in _release_flags(run)}
        missing = [k for k, f in found.items() if f is None]
        if missing and run.version:
            raise _Fail(f"release {run.version}'s flag(s) {', '.join(missing)} do not exist yet: create them off "
                        "(`POST /api/flags`, new flags start DISABLED and new)")
        return {k: f for k, f in found.items() if f is not None}
    result: dict[str, dict[str, Any]] = await run.once("flags", make)
    return result


async def new_features_off(run: _Run) -> str:
    """Each flag of the release exists, is marked `new` (so kill-new stops it), and serves its off variant
    to everyone by default."""
    flags = await _existing_flags(run)
    if not flags:
        return f"no flag of {', '.join(_release_flags(run)) or 'any release'} exists yet: nothing is on"
    wrong = [f"{k} is not marked new (kill-new would not turn it off)" for k, f in flags.items() if not f.get("new")]
    wrong += [f"{k}: {why}" for k, f in flags.items() if (why := serves_on(f))]
    if wrong:
        raise _Fail("; ".join(wrong))
    return "; ".join(f"{k}: {f['state']}{' (killed)' if f.get('killed') else ''}, serves {f['offVariant']!r}"
                     for k, f in flags.items())


async def turning_on_and_off(run: _Run) -> str:
    """For each flag with a probe: on for the probe user only -> the app answers `on`; off -> `off`; the
    flag's previous definition is put back and checked."""
    flags = await _existing_flags(run)
    probes = {p.flag: p for p in run.spec.probes}
    unprobed = [k for k in flags if k not in probes]
    if unprobed:
        raise _Fail(f"no [preflight.flags.<key>] probe for {', '.join(unprobed)}: cannot test it on and off")
    if not flags:
        return "no flag of the release exists yet: nothing to toggle"
    user = str(run.pre.get("probe_user", "safeguard-preflight"))
    timeout_s = float(run.pre.get("probe_timeout_s", 5))
    done = []
    for key in flags:
        try:
            done.append(await toggle(api=run.flags, http=run.http, probe=probes[key], user=user, target=run.target,
                                     timeout_s=timeout_s))
        except ProbeFailed as exc:
            version = await _version(run, run.target)
            raise _Fail(f"{exc}{f' (the target runs {version})' if version else ''}") from None
    return "; ".join(done)


async def rollback_plan(run: _Run) -> str:
    """The release before this one is known, and the database can go back to its migration: it is applied
    and every later migration has a down file (`safeguard rollback`), or a verified backup restores it."""
    names, current = list(run.spec.releases), _current(run)
    if current is None:
        raise _Fail(f"no [releases.<version>] in {run.spec.source}")
    index = names.index(current)
    if index == 0:
        return f"{current} is the first release: rolling back is turning its flags off (kill-new)"
    previous = names[index - 1]
    target = run.spec.releases[previous].get("migration")
    states = await _states(run)
    upto = _release_migration(run)
    later = [s for s in states if (target is None or s.version > target) and (upto is None or s.version <= upto)]
    if target is not None and not any(s.version == target and s.applied for s in states):
        raise _Fail(f"the previous release {previous} runs on {target}, which is not applied here: "
                    f"the database cannot be rolled back to it")
    no_down = [s.version for s in later if not s.has_down]
    if no_down:
        raise _Fail(f"back to {previous} ({target}) needs down files for {', '.join(no_down)}")
    undo = ", ".join(s.version for s in reversed(later)) or "nothing"
    flags = ", ".join(run.spec.releases[current].get("flags", [])) or "none"
    live = await _version(run, run.spec.url)
    return (f"back to {previous}: traffic to the colour running {previous}, kill {current}'s flags ({flags}), "
            f"database rollback to {target} (undoes {undo})"
            f"{f'; the front {run.spec.url} runs {live} now' if live else ''}")


async def _version(run: _Run, url: str) -> str | None:
    """What the instance's health answer says it runs (the demo's `version`), if it says."""
    try:
        version = (await get_patiently(run.http, url + run.spec.health)).json().get("version")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return str(version) if version else None


# ---- 3. Circuit Breakers Active ---------------------------------------------------------------------

async def _breakers(run: _Run) -> dict[str, Any]:
    path = str(run.pre.get("breakers_path", "/api/breakers"))

    async def make() -> dict[str, Any]:
        url = run.target + path
        try:
            resp = await get_patiently(run.http, url)
        except httpx.HTTPError as exc:
            raise _Fail(f"{url} does not answer ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise _Fail(f"{url} answered HTTP {resp.status_code}: the app lists no breakers there")
        try:
            data = resp.json()
        except ValueError:
            raise _Fail(f"{url} did not answer JSON") from None
        if not isinstance(data, dict):
            raise _Fail(f"{url} answered {type(data).__name__}, not an object of breaker name -> state")
        return data
    result: dict[str, Any] = await run.once("breakers", make)
    return result


def _breaker_names(run: _Run, *, redis: bool) -> list[str]:
    return [str(n) for n in run.pre.get("breakers", []) if ("redis" in str(n).lower()) == redis]


async def _breaker_line(run: _Run, *, redis: bool) -> str:
    names = _breaker_names(run, redis=redis)
    kind = "Redis" if redis else "database"
    if not names:
        raise _Fail(f"no {kind} breaker named in [preflight] breakers of {run.spec.source}")
    found = await _breakers(run)
    missing = [n for n in names if n not in found]
    if missing:
        raise _Fail(f"{run.target} has no breaker {', '.join(missing)} (it has: {', '.join(found) or 'none'})")
    states = {n: (found[n] or {}).get("state", "?") if isinstance(found[n], dict) else "?" for n in names}
    if opened := [n for n, s in states.items() if s == "open"]:
        raise _Fail(f"breaker {', '.join(opened)} is OPEN now: the {kind} is failing, do not deploy")
    return ", ".join(f"{n}: {s}" for n, s in states.items()) + f" at {run.target}"


async def database_breaker(run: _Run) -> str:
    """The app has its database breaker (named in `[preflight] breakers`) and it is not open."""
    return await _breaker_line(run, redis=False)


async def redis_breaker(run: _Run) -> str:
    """The app has its Redis breaker and it is not open."""
    return await _breaker_line(run, redis=True)


async def rate_limiting(run: _Run) -> str:
    """A normal request to the app carries the IETF RateLimit headers (shared/ratelimit.py)."""
    url = run.target + str(run.pre.get("ratelimit_path", "/"))
    try:
        resp = await get_patiently(run.http, url)
    except httpx.HTTPError as exc:
        raise _Fail(f"{url} does not answer ({type(exc).__name__})") from None
    policy, state = resp.headers.get("RateLimit-Policy"), resp.headers.get("RateLimit")
    if not (policy and state):
        raise _Fail(f"{url} answered HTTP {resp.status_code} without RateLimit-Policy / RateLimit headers")
    return f"{url}: RateLimit-Policy: {policy}; RateLimit: {state}"


GROUPS = ("Database Safety", "Feature Flags Ready", "Circuit Breakers Active")
# (id, group, the runbook's line verbatim, the function that checks it)
LINES: list[tuple[str, str, str, Line]] = [
    ("backup", GROUPS[0], "Back up the database before deploying", backup_taken),
    ("migration", GROUPS[0], "Test the migration on staging", migration_tested),
    ("rollback-script", GROUPS[0], "Check the rollback script", rollback_checked),
    ("flags-off", GROUPS[1], "New features are off (disabled by default)", new_features_off),
    ("flags-toggle", GROUPS[1], "Test turning features on and off", turning_on_and_off),
    ("rollback-plan", GROUPS[1], "Prepare a rollback plan", rollback_plan),
    ("db-breaker", GROUPS[2], "Database circuit breaker configured", database_breaker),
    ("redis-breaker", GROUPS[2], "Redis circuit breaker configured", redis_breaker),
    ("rate-limit", GROUPS[2], "API rate limiting enabled", rate_limiting),
]


async def _check(run: _Run, id: str, group: str, line: str, fn: Line) -> Check:
    start = time.perf_counter()
    unreachable = False
    limit = float(run.pre.get("line_timeout_s", 120))
    try:
        why, ok = await asyncio.wait_for(fn(run), limit), True
    except TimeoutError:
        why, ok = f"did not finish in {limit:g} s (a lock held on the database? a hung instance?)", False
    except (_Fail, ProbeFailed, FlagsApiError) as exc:
        why, ok = str(exc), False
    except StackUnreachable as exc:
        why, ok, unreachable = str(exc), False, True
    except Exception as exc:  # noqa: BLE001 - the line fails with the reason; the others still run
        why, ok = f"{type(exc).__name__}: {exc}", False
    return Check(line=line, ok=ok, why=why, seconds=round(time.perf_counter() - start, 3), id=id, group=group,
                 unreachable=unreachable)


async def run_preflight(*, spec: AppSpec, version: str | None, target: str | None, take_backup: bool,
                        settings: DeploySettings | None = None, flags_url: str | None = None,
                        token: str | None = None, only: Collection[str] | None = None) -> list[Check]:
    """Every checklist line against `target` (default: the app's url). `version` names the release being
    deployed (its flags are the new ones); None: every release's flags that exist. The database, backups and
    flags API come from DeploySettings and the CLI's config unless given. `only`: these line ids (LINES)."""
    unknown = set(only or ()) - {entry[0] for entry in LINES}
    if unknown:
        raise ValueError(f"no checklist line {', '.join(sorted(unknown))} (lines: {', '.join(e[0] for e in LINES)})")
    if version is not None and version not in spec.releases:
        raise ValueError(f"no release {version!r} in {spec.source} (releases: {', '.join(spec.releases) or 'none'})")
    config = load_config()
    async with httpx.AsyncClient(timeout=5.0) as http:
        api = FlagsApi(url=flags_url or config.front_url, token=config.token if token is None else token, http=http)
        run = _Run(spec=spec, version=version, target=(target or spec.url).rstrip("/"), take_backup=take_backup,
                   settings=settings or DeploySettings(), http=http, flags=api)
        return [await _check(run, *entry) for entry in LINES if only is None or entry[0] in only]
